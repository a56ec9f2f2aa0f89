//! Linear probe: multinomial logistic regression on frozen, standardised features, trained
//! with AdamW and L2 weight decay (full batch for small label sets, mini-batches otherwise).

use super::Features;
use crate::optim::{Optimizer, OptimizerSpec};
use crate::rng::Rng;
use crate::tensor_util::{int_column, tensor2, to_vec};
use burn::nn::{Linear, LinearConfig};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;

#[derive(Clone, Debug)]
pub struct ProbeConfig {
    pub epochs: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub batch_size: usize,
    pub seed: u64,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            epochs: 100,
            lr: 0.01,
            weight_decay: 1e-4,
            batch_size: 1024,
            seed: 0,
        }
    }
}

/// Per-column mean and standard deviation of the training features.
fn standardizer(f: &Features) -> (Vec<f32>, Vec<f32>) {
    let mut mean = vec![0f64; f.dim];
    let mut sq = vec![0f64; f.dim];
    for r in 0..f.rows {
        for (j, &v) in f.row(r).iter().enumerate() {
            mean[j] += v as f64;
            sq[j] += (v as f64) * (v as f64);
        }
    }
    let n = f.rows.max(1) as f64;
    let m: Vec<f32> = mean.iter().map(|s| (s / n) as f32).collect();
    let s = sq
        .iter()
        .zip(&mean)
        .map(|(q, s)| ((q / n - (s / n).powi(2)).max(0.0).sqrt().max(1e-6)) as f32)
        .collect();
    (m, s)
}

fn standardize(f: &Features, mean: &[f32], std: &[f32]) -> Vec<f32> {
    f.data
        .chunks_exact(f.dim)
        .flat_map(|r| r.iter().zip(mean).zip(std).map(|((v, m), s)| (v - m) / s))
        .collect()
}

/// Train on (`train`, `labels`) and predict the class of every `test` row.
pub fn fit_predict(
    train: &Features,
    labels: &[u32],
    test: &Features,
    num_classes: usize,
    cfg: &ProbeConfig,
    device: &Device,
) -> Vec<u32> {
    let ad = device.clone().autodiff();
    let (mean, std) = standardizer(train);
    let x = standardize(train, &mean, &std);
    let dim = train.dim;
    let mut model: Linear = crate::train::seeded(&ad, cfg.seed, || {
        LinearConfig::new(dim, num_classes).init(&ad)
    });
    let mut opt = Optimizer::new(OptimizerSpec {
        kind: "adamw".into(),
        weight_decay: cfg.weight_decay,
        exclude_bias_and_norm: true,
        ..OptimizerSpec::sgd(cfg.lr, 0.0, 0.0)
    })
    .expect("valid probe optimizer");
    let n = train.rows;
    let bs = if n <= 4096 { n } else { cfg.batch_size.max(1) };
    let batches = n.div_ceil(bs);
    let steps = (cfg.epochs * batches).max(300);
    let mut rng = Rng::derive(cfg.seed, &[0x5052_4f42]);
    let mut order: Vec<usize> = (0..n).collect();
    let full = (bs == n).then(|| {
        (
            tensor2(x.clone(), [n, dim], &ad),
            int_column(labels.iter().map(|&l| l as i64).collect(), &ad),
        )
    });
    for step in 0..steps {
        let b = step % batches;
        if b == 0 && full.is_none() {
            rng.shuffle(&mut order);
        }
        let (xb, yb) = match &full {
            Some((xf, yf)) => (xf.clone(), yf.clone()),
            None => {
                let idx = &order[b * bs..((b + 1) * bs).min(n)];
                let xs: Vec<f32> = idx
                    .iter()
                    .flat_map(|&i| x[i * dim..(i + 1) * dim].iter().copied())
                    .collect();
                let ys: Vec<i64> = idx.iter().map(|&i| labels[i] as i64).collect();
                (tensor2(xs, [idx.len(), dim], &ad), int_column(ys, &ad))
            }
        };
        let loss = log_softmax(model.forward(xb), 1).gather(1, yb).mean().neg();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        // Cosine decay keeps the last steps small, so the probe settles.
        let lr = cfg.lr * 0.5 * (1.0 + (std::f64::consts::PI * step as f64 / steps as f64).cos());
        model = opt.step(lr, model, grads);
    }
    let model = burn::module::Module::valid(&model);
    let xt = tensor2(standardize(test, &mean, &std), [test.rows, dim], device);
    let logits = to_vec(model.forward(xt));
    logits
        .chunks_exact(num_classes)
        .map(|r| {
            r.iter()
                .enumerate()
                .fold(
                    (0, f32::NEG_INFINITY),
                    |b, (i, &v)| if v > b.1 { (i, v) } else { b },
                )
                .0 as u32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separates_linearly_separable_classes() {
        // Three Gaussian blobs in 5-d; a probe must classify held-out points almost perfectly.
        let mut rng = Rng::new(1);
        let centres = [
            [3.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 3.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 3.0, 0.0, 0.0],
        ];
        let mut make = |n: usize| {
            let mut data = Vec::new();
            let mut labels = Vec::new();
            for i in 0..n {
                let c = i % 3;
                for &m in &centres[c] {
                    data.push((m + rng.normal()) as f32);
                }
                labels.push(c as u32);
            }
            (
                Features {
                    data,
                    rows: n,
                    dim: 5,
                },
                labels,
            )
        };
        let (train, yl) = make(90);
        let (test, yt) = make(300);
        let d = crate::device::parse("cpu").unwrap();
        let pred = fit_predict(&train, &yl, &test, 3, &ProbeConfig::default(), &d);
        let acc = super::super::accuracy(&pred, &yt);
        assert!(acc > 0.9, "{acc}");
    }
}
