//! A group of ranks that are threads of one process: the same collective operations as MPI,
//! through shared memory, so that the distributed arithmetic is tested without MPI.

use super::Collective;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};

struct Shared {
    slots: Mutex<Vec<Vec<u8>>>,
    barrier: Barrier,
}

struct LocalRank {
    rank: usize,
    shared: Arc<Shared>,
    sent: AtomicU64,
}

/// `n` ranks, one for each thread that will join the group ([`super::within`]). Each thread
/// builds its own model, as each MPI process does: threads that share a model's parameters
/// share one autodiff graph behind one lock, and a collective inside the backward pass
/// (synchronised BatchNorm) then deadlocks.
pub fn local_group(n: usize) -> Vec<Box<dyn Collective + Send>> {
    let shared = Arc::new(Shared {
        slots: Mutex::new(vec![Vec::new(); n]),
        barrier: Barrier::new(n),
    });
    (0..n)
        .map(|rank| {
            Box::new(LocalRank {
                rank,
                shared: shared.clone(),
                sent: AtomicU64::new(0),
            }) as Box<dyn Collective + Send>
        })
        .collect()
}

impl LocalRank {
    /// Every rank's bytes: written, read after all have written, and not overwritten until
    /// all have read.
    fn exchange(&self, bytes: &[u8]) -> Vec<Vec<u8>> {
        self.sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        self.shared.slots.lock().expect("group lock")[self.rank] = bytes.to_vec();
        self.shared.barrier.wait();
        let all = self.shared.slots.lock().expect("group lock").clone();
        self.shared.barrier.wait();
        all
    }
}

impl Collective for LocalRank {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.shared.slots.lock().expect("group lock").len()
    }
    fn all_reduce_sum(&self, values: &mut [f32]) {
        let all = self.exchange(&super::f32_bytes(values));
        // In rank order on every rank: the same bits everywhere.
        values.fill(0.0);
        for bytes in &all {
            for (v, x) in values.iter_mut().zip(super::bytes_f32(bytes)) {
                *v += x;
            }
        }
    }
    fn all_gather_bytes(&self, local: &[u8]) -> Vec<Vec<u8>> {
        self.exchange(local)
    }
    fn barrier(&self) {
        self.shared.barrier.wait();
    }
    fn bytes_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}
