//! Small helpers between Rust vectors and burn tensors.

use burn::backend::{Backend, tensor::FloatTensor};
use burn::prelude::*;
use burn::tensor::{Bool, DType, Int, Shape, TensorData};

/// A backend tensor's values on the host as f32, with its shape and float type: for
/// operations any backend runs through the host (write back with
/// `TensorData::new(values, shape).convert_dtype(dtype)`).
pub fn host_f32<B: Backend>(t: FloatTensor<B>) -> (Vec<f32>, Shape, DType) {
    let data = burn_std::reader::try_read_sync(B::float_into_data(t))
        .expect("a synchronous backend")
        .expect("reading the tensor");
    let (dtype, shape) = (data.dtype(), data.shape().clone());
    let values = data
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 values");
    (values, shape, dtype)
}

pub fn tensor2(values: Vec<f32>, shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

pub fn tensor4(values: Vec<f32>, shape: [usize; 4], device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

pub fn int_column(values: Vec<i64>, device: &Device) -> Tensor<2, Int> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n, 1]), device)
}

/// True on the diagonal of an `n x n` matrix.
pub fn diagonal(n: usize, device: &Device) -> Tensor<2, Bool> {
    Tensor::<2, Bool>::diag_mask([n, n], 0, device).bool_not()
}

pub fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 tensor data")
}

pub fn scalar(t: Tensor<1>) -> f32 {
    t.into_scalar::<f32>()
}

/// Rows scaled to unit L2 norm; a zero row stays zero (the norm is clamped at 1e-12, as in
/// PyTorch's `F.normalize`, which also keeps the gradient finite).
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).clamp_min(1e-24).sqrt();
    x / norm
}
