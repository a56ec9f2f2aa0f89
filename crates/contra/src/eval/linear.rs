//! Linear probe: multinomial logistic regression on frozen features, done the way published
//! probe numbers are made. Features are standardised with the training rows' mean and
//! (population) standard deviation; the objective
//!
//! `L(W, b) = (1/n) Σ_i -log softmax(x_i W + b)_{y_i} + (λ/2) ||W||²`   (bias unpenalised)
//!
//! is minimised to convergence with L-BFGS, which is scikit-learn's `LogisticRegression`
//! (multinomial, lbfgs) with `C = 1 / (λ n)`. λ is chosen from a grid by validation accuracy:
//! stratified k-fold cross-validation (k = min(5, smallest class count)) on small label sets,
//! one stratified 20% hold-out on large ones; with one label per class there is nothing to
//! validate on and λ = 1/n (scikit-learn's default C = 1) is used.

use super::Features;
use crate::optim::lbfgs::{self, LbfgsConfig};
use crate::rng::Rng;
use crate::tensor_util::{int_column, tensor2, to_vec};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;

#[derive(Clone, Debug)]
pub struct ProbeConfig {
    /// Candidate λ (L2 strength on the mean cross-entropy).
    pub l2_grid: Vec<f64>,
    pub lbfgs: LbfgsConfig,
    /// Seeds the validation split.
    pub seed: u64,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            l2_grid: crate::recipe::EvalSpec::default().probe_l2,
            lbfgs: LbfgsConfig {
                max_iter: 500,
                grad_tol: 1e-5,
                ..Default::default()
            },
            seed: 0,
        }
    }
}

/// Above this many labelled rows one hold-out split replaces k-fold cross-validation.
const CV_LIMIT: usize = 5000;

/// Per-column mean and population standard deviation (1 where a column is constant).
pub fn standardizer(f: &Features) -> (Vec<f32>, Vec<f32>) {
    let mut mean = vec![0f64; f.dim];
    for r in 0..f.rows {
        mean.iter_mut()
            .zip(f.row(r))
            .for_each(|(m, &v)| *m += v as f64);
    }
    let n = f.rows.max(1) as f64;
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0f64; f.dim];
    for r in 0..f.rows {
        var.iter_mut()
            .zip(f.row(r))
            .zip(&mean)
            .for_each(|((s, &v), m)| *s += (v as f64 - m).powi(2));
    }
    let std = var
        .iter()
        .map(|s| {
            let sd = (s / n).sqrt();
            if sd > 1e-12 { sd as f32 } else { 1.0 }
        })
        .collect();
    (mean.iter().map(|&m| m as f32).collect(), std)
}

fn standardize(f: &Features, mean: &[f32], std: &[f32]) -> Features {
    Features {
        data: f
            .data
            .chunks_exact(f.dim)
            .flat_map(|r| r.iter().zip(mean).zip(std).map(|((v, m), s)| (v - m) / s))
            .collect(),
        rows: f.rows,
        dim: f.dim,
    }
}

/// A fitted probe: standardisation, then `x W + b`.
#[derive(Clone, Debug)]
pub struct Probe {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    /// `dim x classes`, row-major, on standardised features.
    pub weights: Vec<f64>,
    pub bias: Vec<f64>,
    pub classes: usize,
    /// The λ it was fitted with.
    pub l2: f64,
    pub iterations: usize,
    pub converged: bool,
}

impl Probe {
    /// The probe whose parameters are an L-BFGS solution (W row-major, then b).
    fn from_solution(
        mean: Vec<f32>,
        std: Vec<f32>,
        r: &lbfgs::LbfgsResult,
        classes: usize,
        l2: f64,
    ) -> Self {
        let split = mean.len() * classes;
        Probe {
            mean,
            std,
            weights: r.x[..split].to_vec(),
            bias: r.x[split..].to_vec(),
            classes,
            l2,
            iterations: r.iterations,
            converged: r.converged,
        }
    }

    /// Class scores (logits) of every row of `f`.
    pub fn logits(&self, f: &Features, device: &Device) -> Vec<f32> {
        let x = standardize(f, &self.mean, &self.std);
        let w = tensor2(
            self.weights.iter().map(|&v| v as f32).collect(),
            [f.dim, self.classes],
            device,
        );
        let b = tensor2(
            self.bias.iter().map(|&v| v as f32).collect(),
            [1, self.classes],
            device,
        );
        to_vec(tensor2(x.data, [f.rows, f.dim], device).matmul(w) + b)
    }

    /// The same map on unstandardised features: `W / std` and `b - (mean / std) W`.
    pub fn raw_weights(&self) -> (Vec<f32>, Vec<f32>) {
        let dim = self.mean.len();
        let mut w = vec![0f32; dim * self.classes];
        let mut b: Vec<f64> = self.bias.clone();
        for j in 0..dim {
            for c in 0..self.classes {
                let v = self.weights[j * self.classes + c] / self.std[j] as f64;
                w[j * self.classes + c] = v as f32;
                b[c] -= self.mean[j] as f64 * v;
            }
        }
        (w, b.into_iter().map(|v| v as f32).collect())
    }

    pub fn predict(&self, f: &Features, device: &Device) -> Vec<u32> {
        argmax_rows(&self.logits(f, device), self.classes)
    }
}

pub(crate) fn argmax_rows(values: &[f32], width: usize) -> Vec<u32> {
    values
        .chunks_exact(width)
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

/// The probe's objective on standardised rows, evaluated with matrix products on `device`.
struct Objective {
    x: Tensor<2>,
    xt: Tensor<2>,
    onehot: Tensor<2>,
    labels: Tensor<2, Int>,
    n: usize,
    dim: usize,
    classes: usize,
    l2: f64,
}

impl Objective {
    fn new(x: &Features, labels: &[u32], classes: usize, device: &Device) -> Self {
        let n = x.rows;
        let mut onehot = vec![0f32; n * classes];
        labels
            .iter()
            .enumerate()
            .for_each(|(i, &l)| onehot[i * classes + l as usize] = 1.0);
        let xt = tensor2(x.data.clone(), [n, x.dim], device);
        Self {
            xt: xt.clone().transpose(),
            x: xt,
            onehot: tensor2(onehot, [n, classes], device),
            labels: int_column(labels.iter().map(|&l| l as i64).collect(), device),
            n,
            dim: x.dim,
            classes,
            l2: 0.0,
        }
    }

    /// Value and gradient at `theta` = (W row-major, then b).
    fn eval(&self, theta: &[f64]) -> (f64, Vec<f64>) {
        let (d, c) = (self.dim, self.classes);
        let device = self.x.device();
        let w = tensor2(
            theta[..d * c].iter().map(|&v| v as f32).collect(),
            [d, c],
            &device,
        );
        let b = tensor2(
            theta[d * c..].iter().map(|&v| v as f32).collect(),
            [1, c],
            &device,
        );
        let lsm = log_softmax(self.x.clone().matmul(w) + b, 1);
        // Per-row losses come back and are summed in f64, so that the line search sees
        // decreases far below f32's resolution of the total.
        let picked = to_vec(lsm.clone().gather(1, self.labels.clone()));
        let residual = (lsm.exp() - self.onehot.clone()).div_scalar(self.n as f32);
        let gw = to_vec(self.xt.clone().matmul(residual.clone()));
        let gb = to_vec(residual.sum_dim(0));
        let mut value = -picked.iter().map(|&v| v as f64).sum::<f64>() / self.n as f64;
        let mut grad: Vec<f64> = gw.iter().chain(&gb).map(|&v| v as f64).collect();
        for (g, w) in grad[..d * c].iter_mut().zip(&theta[..d * c]) {
            *g += self.l2 * w;
            value += 0.5 * self.l2 * w * w;
        }
        (value, grad)
    }
}

/// Fit with a fixed λ on standardised rows, from `start` (zeros when `None`).
fn fit_standardized(
    x: &Features,
    labels: &[u32],
    classes: usize,
    l2: f64,
    start: Option<Vec<f64>>,
    cfg: &LbfgsConfig,
    device: &Device,
) -> lbfgs::LbfgsResult {
    let mut objective = Objective::new(x, labels, classes, device);
    objective.l2 = l2;
    let x0 = start.unwrap_or_else(|| vec![0.0; (x.dim + 1) * classes]);
    lbfgs::minimize(|t| objective.eval(t), x0, cfg)
}

/// Fit with a fixed λ (standardising with `train`'s statistics).
pub fn fit(
    train: &Features,
    labels: &[u32],
    classes: usize,
    l2: f64,
    cfg: &LbfgsConfig,
    device: &Device,
) -> Probe {
    let (mean, std) = standardizer(train);
    let x = standardize(train, &mean, &std);
    let r = fit_standardized(&x, labels, classes, l2, None, cfg, device);
    Probe::from_solution(mean, std, &r, classes, l2)
}

/// Stratified validation folds: (fit rows, validation rows) pairs; empty when some class has
/// a single labelled row.
pub fn validation_folds(
    labels: &[u32],
    classes: usize,
    seed: u64,
) -> Vec<(Vec<usize>, Vec<usize>)> {
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    labels
        .iter()
        .enumerate()
        .for_each(|(i, &l)| by_class[l as usize].push(i));
    let smallest = by_class
        .iter()
        .filter(|c| !c.is_empty())
        .map(Vec::len)
        .min()
        .unwrap_or(0);
    if smallest < 2 {
        return Vec::new();
    }
    let hold_out = labels.len() > CV_LIMIT;
    let k = if hold_out { 5 } else { smallest.min(5) };
    // Each class's rows, shuffled, dealt round-robin to the k folds.
    let mut fold_of = vec![0usize; labels.len()];
    for (c, rows) in by_class.iter_mut().enumerate() {
        Rng::derive(seed, &[0x4356_4f4c, c as u64]).shuffle(rows);
        rows.iter()
            .enumerate()
            .for_each(|(j, &i)| fold_of[i] = j % k);
    }
    let folds = if hold_out { 1 } else { k };
    (0..folds)
        .map(|f| {
            let (val, fit): (Vec<usize>, Vec<usize>) =
                (0..labels.len()).partition(|&i| fold_of[i] == f);
            (fit, val)
        })
        .collect()
}

/// λ with the best mean validation accuracy (ties go to the stronger λ), or 1/n when there is
/// nothing to validate on. Returns the choice and each candidate's mean accuracy.
pub fn select_l2(
    train: &Features,
    labels: &[u32],
    classes: usize,
    cfg: &ProbeConfig,
    device: &Device,
) -> (f64, Vec<(f64, f64)>) {
    let folds = validation_folds(labels, classes, cfg.seed);
    if folds.is_empty() || cfg.l2_grid.len() < 2 {
        let fallback = cfg
            .l2_grid
            .first()
            .copied()
            .filter(|_| cfg.l2_grid.len() == 1)
            .unwrap_or(1.0 / labels.len().max(1) as f64);
        return (fallback, Vec::new());
    }
    let mut grid = cfg.l2_grid.clone();
    grid.sort_by(|a, b| b.total_cmp(a));
    let mut scores = vec![0.0; grid.len()];
    for (fit_rows, val_rows) in &folds {
        let fit_set = train.select(fit_rows);
        let fit_labels: Vec<u32> = fit_rows.iter().map(|&i| labels[i]).collect();
        let (mean, std) = standardizer(&fit_set);
        let x = standardize(&fit_set, &mean, &std);
        let val = train.select(val_rows);
        let val_labels: Vec<u32> = val_rows.iter().map(|&i| labels[i]).collect();
        // Strongest λ first, each warm-started from the previous solution.
        let mut start = None;
        for (s, &l2) in scores.iter_mut().zip(&grid) {
            let r = fit_standardized(&x, &fit_labels, classes, l2, start, &cfg.lbfgs, device);
            let probe = Probe::from_solution(mean.clone(), std.clone(), &r, classes, l2);
            *s += super::accuracy(&probe.predict(&val, device), &val_labels) / folds.len() as f64;
            start = Some(r.x);
        }
    }
    let best = scores
        .iter()
        .enumerate()
        .fold(0, |b, (i, &s)| if s > scores[b] + 1e-12 { i } else { b });
    (grid[best], grid.into_iter().zip(scores).collect())
}

/// Choose λ on validation splits of the training rows, then fit on all of them.
pub fn fit_selected(
    train: &Features,
    labels: &[u32],
    classes: usize,
    cfg: &ProbeConfig,
    device: &Device,
) -> Probe {
    let (l2, _) = select_l2(train, labels, classes, cfg, device);
    fit(train, labels, classes, l2, &cfg.lbfgs, device)
}

/// Fit on (`train`, `labels`) with λ chosen by validation and predict every `test` row.
pub fn fit_predict(
    train: &Features,
    labels: &[u32],
    test: &Features,
    num_classes: usize,
    cfg: &ProbeConfig,
    device: &Device,
) -> Vec<u32> {
    fit_selected(train, labels, num_classes, cfg, device).predict(test, device)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs(n: usize, rng: &mut Rng) -> (Features, Vec<u32>) {
        let centres = [
            [3.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 3.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 3.0, 0.0, 0.0],
        ];
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
    }

    #[test]
    fn separates_linearly_separable_classes() {
        let mut rng = Rng::new(1);
        let (train, yl) = blobs(90, &mut rng);
        let (test, yt) = blobs(300, &mut rng);
        let d = crate::device::parse("cpu").unwrap();
        let pred = fit_predict(&train, &yl, &test, 3, &ProbeConfig::default(), &d);
        let acc = super::super::accuracy(&pred, &yt);
        assert!(acc > 0.9, "{acc}");
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let mut rng = Rng::new(2);
        let (x, y) = blobs(12, &mut rng);
        let d = crate::device::parse("cpu").unwrap();
        let mut obj = Objective::new(&x, &y, 3, &d);
        obj.l2 = 0.3;
        let theta: Vec<f64> = (0..18).map(|i| 0.1 * ((i * 7 % 5) as f64 - 2.0)).collect();
        let (_, g) = obj.eval(&theta);
        for i in [0, 4, 9, 15, 16, 17] {
            let h = 1e-3;
            let mut a = theta.clone();
            let mut b = theta.clone();
            a[i] += h;
            b[i] -= h;
            let numeric = (obj.eval(&a).0 - obj.eval(&b).0) / (2.0 * h);
            assert!((numeric - g[i]).abs() < 1e-4, "{i}: {numeric} vs {}", g[i]);
        }
    }

    #[test]
    fn raw_weights_give_the_same_logits() {
        let mut rng = Rng::new(4);
        let (x, y) = blobs(30, &mut rng);
        let d = crate::device::parse("cpu").unwrap();
        let probe = fit(&x, &y, 3, 0.01, &LbfgsConfig::default(), &d);
        let (w, b) = probe.raw_weights();
        let logits = probe.logits(&x, &d);
        for r in 0..x.rows {
            for c in 0..3 {
                let direct: f32 = b[c] + (0..5).map(|j| x.row(r)[j] * w[j * 3 + c]).sum::<f32>();
                assert!(
                    (direct - logits[r * 3 + c]).abs() < 1e-3,
                    "{direct} vs {}",
                    logits[r * 3 + c]
                );
            }
        }
    }

    #[test]
    fn folds_are_stratified_and_cover_every_row_once() {
        let labels: Vec<u32> = (0..40).map(|i| (i % 4) as u32).collect();
        let folds = validation_folds(&labels, 4, 3);
        assert_eq!(folds.len(), 5);
        let mut seen = [0; 40];
        for (fit, val) in &folds {
            assert_eq!(fit.len() + val.len(), 40);
            val.iter().for_each(|&i| seen[i] += 1);
            for c in 0..4 {
                assert_eq!(val.iter().filter(|&&i| labels[i] == c).count(), 2);
            }
        }
        assert!(seen.iter().all(|&s| s == 1));
        let one_each: Vec<u32> = (0..4).collect();
        assert!(validation_folds(&one_each, 4, 0).is_empty());
    }
}
