//! The fused kernels of TS2Vec's loss (contra::losses::kernels) against f64 evaluations of
//! their definitions, value and gradient, on flex: f32 storage directly, other float types
//! through the host path, the same digits at any thread count.

#[path = "support/threads.rs"]
mod threads;

use burn::prelude::*;
use burn::tensor::TensorData;
use contra::losses::kernels::{max_pool_pairs, partner_cross_entropy};
use contra::rng::Rng;
use contra::tensor_util::to_vec;

fn normal(rng: &mut Rng, n: usize, scale: f64) -> Vec<f32> {
    (0..n).map(|_| (rng.normal() * scale) as f32).collect()
}

/// `sum_{g,r} w[g,r] * out[g,r]` and its gradient, by the definition in f64.
fn partner_reference(
    sim: &[f32],
    w: &[f32],
    groups: usize,
    rows: usize,
    shift: usize,
) -> (Vec<f64>, Vec<f64>) {
    let mut out = vec![0.0; groups * rows];
    let mut grad = vec![0.0; sim.len()];
    for g in 0..groups {
        for r in 0..rows {
            let row: Vec<f64> = (0..rows)
                .map(|c| sim[(g * rows + r) * rows + c] as f64)
                .collect();
            let max = (0..rows)
                .filter(|&c| c != r)
                .map(|c| row[c])
                .fold(f64::MIN, f64::max);
            let sum: f64 = (0..rows)
                .filter(|&c| c != r)
                .map(|c| (row[c] - max).exp())
                .sum();
            let lse = max + sum.ln();
            let partner = (r + shift) % rows;
            out[g * rows + r] = lse - row[partner];
            let wr = w[g * rows + r] as f64;
            for c in 0..rows {
                let p = if c == r { 0.0 } else { (row[c] - lse).exp() };
                let onehot = if c == partner { 1.0 } else { 0.0 };
                grad[(g * rows + r) * rows + c] = wr * (p - onehot);
            }
        }
    }
    (out, grad)
}

#[test]
fn partner_cross_entropy_equals_its_definition_in_value_and_gradient() {
    let device = contra::device::parse("cpu").unwrap().autodiff();
    let mut rng = Rng::new(11);
    // Rows of 2 (one negative), of 7 (under one lane block), of 40 (blocks and a remainder,
    // the diagonal inside a block), with large similarities (the shift by the row's maximum).
    for (groups, rows, scale) in [(3, 2, 1.0), (2, 7, 3.0), (4, 40, 30.0)] {
        let shift = rows / 2;
        let sim_values = normal(&mut rng, groups * rows * rows, scale);
        let weights = normal(&mut rng, groups * rows, 1.0);
        let sim = Tensor::<3>::from_data(
            TensorData::new(sim_values.clone(), [groups, rows, rows]),
            &device,
        )
        .require_grad();
        let w = Tensor::<2>::from_data(TensorData::new(weights.clone(), [groups, rows]), &device);
        let out = partner_cross_entropy(sim.clone(), shift);
        let grads = (out.clone() * w).sum().backward();
        let (got, got_grad) = (to_vec(out), to_vec(sim.grad(&grads).unwrap()));
        let (want, want_grad) = partner_reference(&sim_values, &weights, groups, rows, shift);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (*g as f64 - w).abs() <= 1e-5 * w.abs().max(1.0),
                "rows {rows}, loss {i}: {g} vs {w}"
            );
        }
        // f32 rounding of the log-sum-exp (values near `scale * 3`) moves every probability by
        // that much relatively.
        let tol = 4e-7 * (1.0 + scale);
        for (i, (g, w)) in got_grad.iter().zip(&want_grad).enumerate() {
            assert!(
                (*g as f64 - w).abs() <= tol * w.abs().max(1.0),
                "rows {rows}, gradient {i}: {g} vs {w}"
            );
        }
    }
}

#[test]
fn max_pool_pairs_equals_its_definition_in_value_and_gradient() {
    let device = contra::device::parse("cpu").unwrap().autodiff();
    let mut rng = Rng::new(12);
    // An odd number of steps (the last one dropped) and planted ties (the earlier step wins).
    let (b, t, c) = (3, 7, 5);
    let mut values = normal(&mut rng, b * t * c, 1.0);
    for i in 0..b {
        values[(i * t + 3) * c + 2] = values[(i * t + 2) * c + 2];
    }
    let weights = normal(&mut rng, b * (t / 2) * c, 1.0);
    let z =
        Tensor::<3>::from_data(TensorData::new(values.clone(), [b, t, c]), &device).require_grad();
    let w = Tensor::<3>::from_data(TensorData::new(weights.clone(), [b, t / 2, c]), &device);
    let out = max_pool_pairs(z.clone());
    assert_eq!(out.dims(), [b, t / 2, c]);
    let grads = (out.clone() * w).sum().backward();
    let (got, got_grad) = (to_vec(out), to_vec(z.grad(&grads).unwrap()));
    let mut want_grad = vec![0.0f32; values.len()];
    for i in 0..b {
        for s in 0..t / 2 {
            for k in 0..c {
                let (even, odd) = ((i * t + 2 * s) * c + k, (i * t + 2 * s + 1) * c + k);
                let o = (i * (t / 2) + s) * c + k;
                let winner = if values[odd] > values[even] {
                    odd
                } else {
                    even
                };
                assert_eq!(got[o], values[winner], "output {o}");
                want_grad[winner] = weights[o];
            }
        }
    }
    assert_eq!(got_grad, want_grad);
}

/// Empty shapes give empty results (a chunk size of 0 would panic in the row loops).
#[test]
fn kernels_take_empty_shapes() {
    let device = contra::device::parse("cpu").unwrap().autodiff();
    let sim = Tensor::<3>::zeros([2, 0, 0], &device).require_grad();
    let out = partner_cross_entropy(sim.clone(), 0);
    assert_eq!(out.dims(), [2, 0]);
    for dims in [[2, 1, 3], [2, 5, 0], [0, 4, 3]] {
        let z = Tensor::<3>::ones(dims, &device).require_grad();
        let pooled = max_pool_pairs(z.clone());
        assert_eq!(pooled.dims(), [dims[0], dims[1] / 2, dims[2]]);
        let grads = (pooled.sum() + z.clone().sum()).backward();
        assert!(to_vec(z.grad(&grads).unwrap()).iter().all(|&g| g == 1.0));
    }
}

#[test]
fn kernels_give_the_same_digits_for_f64_inputs_and_any_thread_count() {
    let plain = contra::device::parse("cpu").unwrap();
    let mut rng = Rng::new(13);
    let (groups, rows) = (5, 300);
    let values = normal(&mut rng, groups * rows * rows, 5.0);
    let series = normal(&mut rng, 4 * 151 * 33, 1.0);
    let run = || {
        let sim = Tensor::<3>::from_data(
            TensorData::new(values.clone(), [groups, rows, rows]),
            &plain,
        );
        let z = Tensor::<3>::from_data(TensorData::new(series.clone(), [4, 151, 33]), &plain);
        (
            to_vec(partner_cross_entropy(sim, rows / 2)),
            to_vec(max_pool_pairs(z)),
        )
    };
    let in_pool = |threads| threads::with_threads(threads, run);
    let one = in_pool(1);
    assert_eq!(one, in_pool(3));
    // f64 tensors take the host path: the same f32 values, computed from f64 storage.
    let sim = Tensor::<3>::from_data(
        TensorData::new(values.clone(), [groups, rows, rows]),
        &plain,
    )
    .cast(burn::tensor::DType::F64);
    assert_eq!(sim.dtype(), burn::tensor::DType::F64);
    let wide_out = partner_cross_entropy(sim, rows / 2);
    assert_eq!(wide_out.dtype(), burn::tensor::DType::F64);
    assert_eq!(to_vec(wide_out), one.0);
}

/// LibTorch runs the same row kernels on a host copy: the same values and gradients as flex.
/// Runs only in builds with the `tch` feature (not in CI, which has no LibTorch).
#[cfg(feature = "tch")]
#[test]
fn libtorch_gives_flex_values_and_gradients() {
    let mut rng = Rng::new(14);
    let (groups, rows) = (3, 24);
    let sim_values = normal(&mut rng, groups * rows * rows, 4.0);
    let series = normal(&mut rng, 2 * 9 * 5, 1.0);
    let run = |name: &str| {
        let device = contra::device::parse(name).unwrap().autodiff();
        let sim = Tensor::<3>::from_data(
            TensorData::new(sim_values.clone(), [groups, rows, rows]),
            &device,
        )
        .require_grad();
        let z = Tensor::<3>::from_data(TensorData::new(series.clone(), [2, 9, 5]), &device)
            .require_grad();
        let loss = partner_cross_entropy(sim.clone(), rows / 2).sum()
            + max_pool_pairs(z.clone()).powi_scalar(2).sum();
        let grads = loss.backward();
        (
            to_vec(loss),
            to_vec(sim.grad(&grads).unwrap()),
            to_vec(z.grad(&grads).unwrap()),
        )
    };
    let (flex, tch) = (run("cpu"), run("tch-cpu"));
    for (a, b) in [(&flex.0, &tch.0), (&flex.1, &tch.1), (&flex.2, &tch.2)] {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-5 * x.abs().max(1.0), "{x} vs {y}");
        }
    }
}
