//! A differentiable sum over the ranks: forward, every rank's tensor summed (each rank gets
//! the sum); backward, the incoming gradients summed the same way, since the adjoint of "every
//! rank receives the sum" is the sum of every rank's gradient. Synchronised BatchNorm builds
//! its statistics on it, which makes their gradient exact (PyTorch's SyncBatchNorm
//! all-reduces the same sums in its backward pass).

// burn 0.22 marks burn-tch deprecated (the extension's generated code names it too);
// contra keeps it as an opt-in backend.
#![cfg_attr(feature = "tch", allow(deprecated))]

use crate::tensor_util::host_f32;
use burn::backend::{Backend, Dispatch, TensorMetadata, backend_extension, tensor::FloatTensor};
use burn::prelude::*;
use burn_autodiff::{
    Autodiff,
    checkpoint::{base::Checkpointer, strategy::CheckpointStrategy},
    grads::Gradients,
    ops::{Backward, Ops, OpsKind, unary},
};

/// The backend operation behind [`rank_sum`].
#[backend_extension(
    Flex: cfg(feature = "flex"),
    LibTorch: cfg(feature = "tch"),
    Autodiff: cfg(all()),
)]
pub trait RankSumOps: Backend {
    /// `x` summed over the ranks of this thread's group (unchanged alone).
    fn rank_sum(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// `x` summed over the ranks of this thread's group, with the gradient of that sum (every
/// rank's incoming gradient summed). Alone: `x`.
pub fn rank_sum<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if super::group().is_none() {
        return x;
    }
    Tensor::from_dispatch(<Dispatch as RankSumOps>::rank_sum(x.into_dispatch()))
}

/// Through the host: the tensors are small (per-channel statistics).
fn host_rank_sum<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    let Some(group) = super::group() else {
        return x;
    };
    let device = x.device();
    let (mut values, shape, dtype) = host_f32::<B>(x);
    group.all_reduce_sum(&mut values);
    B::float_from_data(TensorData::new(values, shape).convert_dtype(dtype), &device)
}

#[cfg(feature = "flex")]
impl RankSumOps for burn::backend::Flex {
    fn rank_sum(x: FloatTensor<Self>) -> FloatTensor<Self> {
        host_rank_sum::<Self>(x)
    }
}

#[cfg(feature = "tch")]
impl RankSumOps for burn::backend::LibTorch {
    fn rank_sum(x: FloatTensor<Self>) -> FloatTensor<Self> {
        host_rank_sum::<Self>(x)
    }
}

impl<B: Backend + RankSumOps, C: CheckpointStrategy> RankSumOps for Autodiff<B, C> {
    fn rank_sum(x: FloatTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct RankSum;

        impl<B: Backend + RankSumOps> Backward<B, 1> for RankSum {
            type State = ();

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                unary::<B, _>(ops.parents, ops.node, grads, |grad| B::rank_sum(grad));
            }
        }

        let guard = x.node();
        let summed = B::rank_sum(x.into_primitive());
        match RankSum.prepare::<C>([guard]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((), summed),
            OpsKind::UnTracked(prep) => prep.finish(summed),
        }
    }
}
