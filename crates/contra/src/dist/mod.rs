//! Training and embedding across processes: the ranks of a group, each with its share of
//! every global batch, and the few collective operations they need (all-reduce of gradients,
//! all-gather of embeddings and labels).
//!
//! A process joins a group for the work done on its thread ([`within`], or [`install`] for
//! the whole main thread); outside one it works alone and every operation here is the
//! identity. Groups come from MPI (the `mpi` feature, [`mpi::MpiGroup`]) or from threads of
//! one process ([`local_group`], for tests and for checking the arithmetic without MPI).
//!
//! Global negatives keep the single-process gradient: each rank gathers the others' rows
//! without gradient, puts its own live rows back in their slots ([`gather_rows`]) and computes
//! the loss of the whole global batch; the sum over ranks of each rank's parameter gradient
//! ([`Collective::all_reduce_sum`]) is then the gradient of one process on the global batch.

mod local;
#[cfg(feature = "mpi")]
pub mod mpi;
pub mod rank_sum;

pub use local::local_group;
pub use rank_sum::rank_sum;

use burn::prelude::*;
use std::cell::RefCell;
use std::ops::Range;
use std::rc::Rc;

/// The operations a rank shares with the others of its group. Every rank calls the same
/// operations in the same order (they block until all have called).
pub trait Collective {
    fn rank(&self) -> usize;
    fn size(&self) -> usize;
    /// `values` summed over the ranks, element by element, the same bits on every rank.
    fn all_reduce_sum(&self, values: &mut [f32]);
    /// Every rank's `local` bytes (their lengths may differ), in rank order.
    fn all_gather_bytes(&self, local: &[u8]) -> Vec<Vec<u8>>;
    /// Wait until every rank has arrived.
    fn barrier(&self);
    /// Bytes this rank has sent so far.
    fn bytes_sent(&self) -> u64;
    /// End every rank of the group (after an error on this one).
    fn abort(&self, code: i32) {
        std::process::exit(code)
    }
}

thread_local! {
    static GROUP: RefCell<Option<Rc<dyn Collective>>> = const { RefCell::new(None) };
    static SYNC_BATCH_NORM: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
}

/// Whether BatchNorm in training uses the statistics of the global batch (every rank's
/// items) rather than of this rank's share: on unless switched off (`train.sync_batch_norm`).
pub fn set_sync_batch_norm(on: bool) {
    SYNC_BATCH_NORM.with(|s| s.set(on));
}

/// `norm` applied to `x` (`[batch, channels, ...]`). In training, in a group, with
/// synchronisation on: normalised by the mean and (biased) variance of the global batch,
/// each a [`rank_sum`] of per-channel sums, so that the output and its gradient are those of
/// one process on the whole batch; the running statistics move as burn's do. Otherwise
/// burn's own forward.
pub fn batch_norm<const D: usize>(norm: &burn::nn::BatchNorm, x: Tensor<D>) -> Tensor<D> {
    let training = x.device().is_autodiff() && norm.training.is_enabled();
    if !training || group().is_none() || !SYNC_BATCH_NORM.with(|s| s.get()) {
        return norm.forward(x);
    }
    let dims = x.dims();
    let channels = dims[1];
    let per_channel = dims.iter().product::<usize>() / channels.max(1);
    let mut swapped = dims;
    swapped.swap(0, 1);
    let flat: Tensor<2> = x.swap_dims(0, 1).reshape([channels, per_channel]);
    let device = flat.device();
    // The global count travels with the sums (one exchange, not two).
    let local = Tensor::cat(
        vec![
            flat.clone().sum_dim(1),
            Tensor::full([1, 1], per_channel as f32, &device),
        ],
        0,
    );
    let global = rank_sum(local);
    let n: f32 = global.clone().narrow(0, channels, 1).detach().into_scalar();
    let mean = global.narrow(0, 0, channels).div_scalar(n as f64);
    let centered = flat - mean.clone();
    let variance = rank_sum(centered.clone().powi_scalar(2).sum_dim(1)).div_scalar(n as f64);
    let gamma = norm.gamma.val().reshape([channels, 1]);
    let beta = norm.beta.val().reshape([channels, 1]);
    let out = centered / variance.clone().add_scalar(norm.epsilon).sqrt() * gamma + beta;
    let m = norm.momentum;
    let running_mean = norm.running_mean.value_sync().to_device(&device);
    let running_var = norm.running_var.value_sync().to_device(&device);
    norm.running_mean.update(
        (running_mean.mul_scalar(1.0 - m) + mean.detach().reshape([channels]).mul_scalar(m))
            .detach(),
    );
    norm.running_var.update(
        (running_var.mul_scalar(1.0 - m) + variance.detach().reshape([channels]).mul_scalar(m))
            .detach(),
    );
    out.reshape(swapped).swap_dims(0, 1)
}

/// The group this thread works in, if it works in one of more than one rank.
pub fn group() -> Option<Rc<dyn Collective>> {
    GROUP.with(|g| g.borrow().clone()).filter(|g| g.size() > 1)
}

/// This thread's rank and the number of ranks (`(0, 1)` alone).
pub fn rank_and_size() -> (usize, usize) {
    group().map_or((0, 1), |g| (g.rank(), g.size()))
}

/// Whether this thread is rank 0 (or alone): the one that writes a run's files.
pub fn is_first() -> bool {
    rank_and_size().0 == 0
}

/// Run `f` with this thread in `group`.
pub fn within<T>(group: Box<dyn Collective>, f: impl FnOnce() -> T) -> T {
    let previous = GROUP.with(|g| g.borrow_mut().replace(Rc::from(group)));
    struct Restore(Option<Rc<dyn Collective>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            GROUP.with(|g| *g.borrow_mut() = previous);
        }
    }
    let _restore = Restore(previous);
    f()
}

/// Put this thread in `group` for the rest of its life (a process's main thread under MPI).
pub fn install(group: Box<dyn Collective>) {
    GROUP.with(|g| *g.borrow_mut() = Some(Rc::from(group)));
}

/// Leave the group this thread is in (under MPI: finalise it, once every rank has left).
pub fn leave() {
    let group = GROUP.with(|g| g.borrow_mut().take());
    drop(group);
}

/// The number of processes an MPI launcher started this one among (OpenMPI's, MPICH's and
/// PMIx's variables), if one did.
pub fn launched_size() -> Option<usize> {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.parse().ok())
}

/// Under `mpirun -n N` with N > 1, join the launcher's group for the rest of this thread (a
/// process's main thread): returns N, or 1 when not launched so. A collective that waits more
/// than `timeout` (a rank died or hangs) ends the process with an error. Without the `mpi`
/// feature, being launched as one of several processes is an error rather than N separate runs.
pub fn join_launched(timeout: std::time::Duration) -> crate::error::Result<usize> {
    let n = launched_size().unwrap_or(1);
    if n <= 1 {
        return Ok(1);
    }
    #[cfg(feature = "mpi")]
    {
        install(Box::new(mpi::MpiGroup::init(timeout)?));
        Ok(n)
    }
    #[cfg(not(feature = "mpi"))]
    {
        let _ = timeout;
        Err(crate::error::Error::other(format!(
            "started as one of {n} MPI processes, but this contra was built without the `mpi` feature (each would train alone): build it with `--features mpi`"
        )))
    }
}

/// End the whole job after an error on this rank (alone: nothing).
pub fn abort(code: i32) {
    if let Some(group) = group() {
        group.abort(code);
    }
}

/// Rank `rank`'s items of a global batch of `total` split over `ranks`: contiguous, in rank
/// order, the first `total % ranks` ranks one item more.
pub fn share(total: usize, rank: usize, ranks: usize) -> Range<usize> {
    let (base, extra) = (total / ranks, total % ranks);
    let start = rank * base + rank.min(extra);
    start..start + base + usize::from(rank < extra)
}

/// The rows of every rank, in rank order, with this rank's own rows the live `rows` (their
/// gradient flows) and the others' constants. Alone: `rows` itself.
pub fn gather_rows(rows: Tensor<2>) -> Tensor<2> {
    let Some(group) = group() else {
        return rows;
    };
    let [n, d] = rows.dims();
    let device = rows.device();
    let host = crate::tensor_util::to_vec(rows.clone().detach());
    let all = group.all_gather_bytes(&f32_bytes(&host));
    let mut parts = Vec::with_capacity(all.len());
    for (r, bytes) in all.iter().enumerate() {
        if r == group.rank() {
            parts.push(rows.clone());
            continue;
        }
        let values = bytes_f32(bytes);
        let m = values.len() / d.max(1);
        if m > 0 {
            parts.push(crate::tensor_util::tensor2(values, [m, d], &device));
        }
    }
    debug_assert!(parts.iter().any(|p| p.dims()[0] == n));
    Tensor::cat(parts, 0)
}

/// `t` as it is on rank 0 and without gradient on the others: a parameter that enters a
/// loss of the global batch directly (CLIP's scale) then has its gradient counted once in
/// the sum over ranks, not once per rank. Alone: `t`.
pub fn counted_once<const D: usize>(t: Tensor<D>) -> Tensor<D> {
    if rank_and_size().0 == 0 {
        t
    } else {
        t.detach()
    }
}

/// Every rank's `values`, concatenated in rank order (labels of a global batch).
pub fn gather_u32(values: &[u32]) -> Vec<u32> {
    let Some(group) = group() else {
        return values.to_vec();
    };
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    group
        .all_gather_bytes(&bytes)
        .iter()
        .flat_map(|b| {
            b.chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
        })
        .collect()
}

/// `values` summed over the ranks (unchanged alone).
pub fn all_reduce_sum(values: &mut [f32]) {
    if let Some(group) = group() {
        group.all_reduce_sum(values);
    }
}

/// Wait for every rank (nothing alone).
pub fn barrier() {
    if let Some(group) = group() {
        group.barrier();
    }
}

pub(crate) fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub(crate) fn bytes_f32(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_the_batch_in_order_with_the_first_ranks_one_more() {
        let shares: Vec<_> = (0..3).map(|r| share(8, r, 3)).collect();
        assert_eq!(shares, vec![0..3, 3..6, 6..8]);
        assert_eq!(share(4, 1, 2), 2..4);
        assert_eq!(share(2, 2, 3), 2..2);
    }

    #[test]
    fn a_thread_group_gathers_in_rank_order_and_sums_alike_on_every_rank() {
        let results: Vec<(Vec<u32>, Vec<f32>)> = std::thread::scope(|s| {
            let handles: Vec<_> = local_group(3)
                .into_iter()
                .map(|g| {
                    s.spawn(move || {
                        within(g, || {
                            let (r, n) = rank_and_size();
                            assert_eq!(n, 3);
                            let labels = gather_u32(&vec![r as u32; r + 1]);
                            let mut v = vec![r as f32 + 0.5, 1.0];
                            all_reduce_sum(&mut v);
                            (labels, v)
                        })
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (labels, sums) in results {
            assert_eq!(labels, vec![0, 1, 1, 2, 2, 2]);
            assert_eq!(sums, vec![4.5, 3.0]);
        }
    }

    #[test]
    fn alone_every_operation_is_the_identity() {
        assert_eq!(rank_and_size(), (0, 1));
        assert_eq!(gather_u32(&[4, 5]), vec![4, 5]);
        let mut v = vec![1.5];
        all_reduce_sum(&mut v);
        assert_eq!(v, vec![1.5]);
    }
}
