//! Support vector classification with an RBF kernel, the classifier TS2Vec evaluates its
//! embeddings with: libsvm's C-SVC (Chang & Lin 2011) as scikit-learn's `SVC` runs it.
//!
//! Each pair of classes gets a binary SVM (one-vs-one); the dual
//! `min_a 1/2 a'Qa - e'a  s.t.  0 <= a_i <= C, y'a = 0`, `Q_ij = y_i y_j K(x_i, x_j)`,
//! `K(x, z) = exp(-gamma |x - z|²)`, is solved by SMO with the second-order working set
//! selection of Fan, Chen and Lin (2005), to the same stopping tolerance (1e-3); the bias is
//! libsvm's (mean over free support vectors). A test item gets one vote per pair, the class with
//! the most votes wins (ties: the lower class). `gamma = 1 / (features x variance of all
//! training values)` is scikit-learn's `"scale"`; `C = inf` gives the hard margin.
//! The kernel matrix is held in memory: up to 20,000 training items.

use super::Features;
use super::linear::validation_folds;
use crate::error::{Error, Result};

const TAU: f64 = 1e-12;
const TOLERANCE: f64 = 1e-3;
/// Above this many training items the kernel matrix would take too much memory.
pub const MAX_TRAIN: usize = 20_000;

/// One binary machine: support vectors (rows of the training set), their `alpha * y`, and
/// the bias `-rho`.
#[derive(Clone, Debug)]
struct Binary {
    rows: Vec<usize>,
    coef: Vec<f64>,
    rho: f64,
}

/// A trained one-vs-one RBF SVM.
#[derive(Clone, Debug)]
pub struct Svm {
    train: Features,
    gamma: f64,
    classes: usize,
    /// Machines for pairs (a, b), a < b, in order.
    machines: Vec<(u32, u32, Binary)>,
}

/// scikit-learn's `gamma = "scale"`.
pub fn scale_gamma(x: &Features) -> f64 {
    let n = x.data.len().max(1) as f64;
    let mean = x.data.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = x
        .data
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    if var > 0.0 {
        1.0 / (x.dim as f64 * var)
    } else {
        1.0
    }
}

fn rbf(a: &[f32], b: &[f32], gamma: f64) -> f64 {
    let d: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum();
    (-gamma * d).exp()
}

/// SMO on the items `rows` of `k` (the full kernel matrix, `n x n`), labels `y` (±1).
fn solve(k: &[f64], n: usize, rows: &[usize], y: &[f64], c: f64) -> Binary {
    let m = rows.len();
    let q = |i: usize, j: usize| y[i] * y[j] * k[rows[i] * n + rows[j]];
    let qd: Vec<f64> = (0..m).map(|i| q(i, i)).collect();
    let mut alpha = vec![0f64; m];
    let mut grad = vec![-1f64; m];
    let upper = |a: f64| a >= c;
    let lower = |a: f64| a <= 0.0;
    for _ in 0..(10_000_000usize).max(100 * m) {
        // i: the most violating index of I_up.
        let (mut gmax, mut gmax2) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
        let mut i = usize::MAX;
        for t in 0..m {
            if y[t] > 0.0 {
                if !upper(alpha[t]) && -grad[t] >= gmax {
                    gmax = -grad[t];
                    i = t;
                }
            } else if !lower(alpha[t]) && grad[t] >= gmax {
                gmax = grad[t];
                i = t;
            }
        }
        if i == usize::MAX {
            break;
        }
        // j: the index of I_low with the largest second-order decrease.
        let mut j = usize::MAX;
        let mut best = f64::INFINITY;
        for t in 0..m {
            let (bound, g) = if y[t] > 0.0 {
                (lower(alpha[t]), grad[t])
            } else {
                (upper(alpha[t]), -grad[t])
            };
            if bound {
                continue;
            }
            gmax2 = gmax2.max(g);
            let diff = gmax + g;
            if diff > 0.0 {
                let quad = qd[i] + qd[t] - 2.0 * y[i] * y[t] * q(i, t);
                let obj = -(diff * diff) / if quad > 0.0 { quad } else { TAU };
                if obj <= best {
                    best = obj;
                    j = t;
                }
            }
        }
        if gmax + gmax2 < TOLERANCE || j == usize::MAX {
            break;
        }
        let (old_i, old_j) = (alpha[i], alpha[j]);
        let qij = q(i, j);
        if y[i] != y[j] {
            let quad = (qd[i] + qd[j] + 2.0 * qij).max(TAU);
            let delta = (-grad[i] - grad[j]) / quad;
            let diff = alpha[i] - alpha[j];
            alpha[i] += delta;
            alpha[j] += delta;
            if diff > 0.0 {
                if alpha[j] < 0.0 {
                    alpha[j] = 0.0;
                    alpha[i] = diff;
                }
            } else if alpha[i] < 0.0 {
                alpha[i] = 0.0;
                alpha[j] = -diff;
            }
            if diff > 0.0 {
                if alpha[i] > c {
                    alpha[i] = c;
                    alpha[j] = c - diff;
                }
            } else if alpha[j] > c {
                alpha[j] = c;
                alpha[i] = c + diff;
            }
        } else {
            let quad = (qd[i] + qd[j] - 2.0 * qij).max(TAU);
            let delta = (grad[i] - grad[j]) / quad;
            let sum = alpha[i] + alpha[j];
            alpha[i] -= delta;
            alpha[j] += delta;
            if sum > c {
                if alpha[i] > c {
                    alpha[i] = c;
                    alpha[j] = sum - c;
                }
            } else if alpha[j] < 0.0 {
                alpha[j] = 0.0;
                alpha[i] = sum;
            }
            if sum > c {
                if alpha[j] > c {
                    alpha[j] = c;
                    alpha[i] = sum - c;
                }
            } else if alpha[i] < 0.0 {
                alpha[i] = 0.0;
                alpha[j] = sum;
            }
        }
        let (di, dj) = (alpha[i] - old_i, alpha[j] - old_j);
        for (t, g) in grad.iter_mut().enumerate() {
            *g += q(t, i) * di + q(t, j) * dj;
        }
    }
    // rho: the mean of y G over free vectors, else the middle of the feasible range.
    let (mut ub, mut lb, mut sum, mut free) = (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0usize);
    for t in 0..m {
        let yg = y[t] * grad[t];
        if upper(alpha[t]) {
            if y[t] < 0.0 {
                ub = ub.min(yg)
            } else {
                lb = lb.max(yg)
            }
        } else if lower(alpha[t]) {
            if y[t] > 0.0 {
                ub = ub.min(yg)
            } else {
                lb = lb.max(yg)
            }
        } else {
            free += 1;
            sum += yg;
        }
    }
    let rho = if free > 0 {
        sum / free as f64
    } else {
        (ub + lb) / 2.0
    };
    let support: Vec<usize> = (0..m).filter(|&t| alpha[t] > 0.0).collect();
    Binary {
        rows: support.iter().map(|&t| rows[t]).collect(),
        coef: support.iter().map(|&t| alpha[t] * y[t]).collect(),
        rho,
    }
}

impl Svm {
    /// Train on `x` with `labels` (classes `0..classes`), box constraint `c` (may be infinite).
    pub fn fit(x: &Features, labels: &[u32], classes: usize, c: f64, gamma: f64) -> Result<Self> {
        let n = x.rows;
        if n > MAX_TRAIN {
            return Err(Error::other(format!(
                "the SVM holds the kernel matrix of its training items: {n} is more than {MAX_TRAIN}; use the linear probe"
            )));
        }
        if c.is_nan() || c <= 0.0 {
            return Err(Error::config("C", "must be positive"));
        }
        let mut k = vec![0f64; n * n];
        for i in 0..n {
            for j in 0..=i {
                let v = rbf(x.row(i), x.row(j), gamma);
                k[i * n + j] = v;
                k[j * n + i] = v;
            }
        }
        let mut machines = Vec::new();
        for a in 0..classes as u32 {
            for b in a + 1..classes as u32 {
                let rows: Vec<usize> = (0..n)
                    .filter(|&i| labels[i] == a || labels[i] == b)
                    .collect();
                if rows.is_empty() {
                    continue;
                }
                let y: Vec<f64> = rows
                    .iter()
                    .map(|&i| if labels[i] == a { 1.0 } else { -1.0 })
                    .collect();
                machines.push((a, b, solve(&k, n, &rows, &y, c)));
            }
        }
        Ok(Self {
            train: x.clone(),
            gamma,
            classes,
            machines,
        })
    }

    /// The decision value of each pair's machine for `row` (positive: the pair's first class).
    pub fn decisions(&self, row: &[f32]) -> Vec<f64> {
        self.machines
            .iter()
            .map(|(_, _, m)| {
                m.rows
                    .iter()
                    .zip(&m.coef)
                    .map(|(&r, c)| c * rbf(self.train.row(r), row, self.gamma))
                    .sum::<f64>()
                    - m.rho
            })
            .collect()
    }

    pub fn predict(&self, x: &Features) -> Vec<u32> {
        (0..x.rows)
            .map(|r| {
                let mut votes = vec![0u32; self.classes];
                for ((a, b, _), d) in self.machines.iter().zip(self.decisions(x.row(r))) {
                    votes[if d > 0.0 { *a } else { *b } as usize] += 1;
                }
                votes
                    .iter()
                    .enumerate()
                    .fold(
                        (0, 0),
                        |best, (c, &v)| if v > best.1 { (c, v) } else { best },
                    )
                    .0 as u32
            })
            .collect()
    }
}

/// TS2Vec's protocol: `gamma = "scale"`; C chosen among 1e-4 ... 1e4 and infinity by 5-fold
/// stratified cross-validation accuracy (first best wins; the folds are drawn with `seed`,
/// where scikit-learn's `GridSearchCV` takes them in file order), unless there are fewer than 5
/// items per class or 50 in all, where C is infinite. Returns the trained SVM and its C.
pub fn fit_cross_validated(
    x: &Features,
    labels: &[u32],
    classes: usize,
    seed: u64,
) -> Result<(Svm, f64)> {
    let gamma = scale_gamma(x);
    let mut grid: Vec<f64> = (-4..=4).map(|e| 10f64.powi(e)).collect();
    grid.push(f64::INFINITY);
    if x.rows / classes.max(1) < 5 || x.rows < 50 {
        return Ok((
            Svm::fit(x, labels, classes, f64::INFINITY, gamma)?,
            f64::INFINITY,
        ));
    }
    let folds = validation_folds(labels, classes, seed);
    let mut best = (f64::NEG_INFINITY, f64::INFINITY);
    let mut progress =
        crate::progress::Task::new("SVM: choosing C", grid.len() * folds.len(), "fits");
    for &c in &grid {
        let mut acc = 0.0;
        for (fit_rows, val_rows) in &folds {
            let fx = x.select(fit_rows);
            let fy: Vec<u32> = fit_rows.iter().map(|&i| labels[i]).collect();
            let vy: Vec<u32> = val_rows.iter().map(|&i| labels[i]).collect();
            // "scale" is computed from each fit's own items, as scikit-learn does at fit time.
            let svm = Svm::fit(&fx, &fy, classes, c, scale_gamma(&fx))?;
            acc += super::accuracy(&svm.predict(&x.select(val_rows)), &vy);
            progress.advance(1);
        }
        if acc > best.0 + 1e-12 {
            best = (acc, c);
        }
    }
    Ok((Svm::fit(x, labels, classes, best.1, gamma)?, best.1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn separates_rings_that_no_line_separates() {
        // Class 0 inside radius 1, class 1 on a ring of radius 2.
        let mut rng = Rng::new(3);
        let mut make = |n: usize| {
            let mut data = Vec::new();
            let mut y = Vec::new();
            for i in 0..n {
                let c = (i % 2) as u32;
                let r = if c == 0 {
                    rng.range(0.0, 1.0)
                } else {
                    rng.range(1.8, 2.2)
                };
                let a = rng.range(0.0, std::f64::consts::TAU);
                data.push((r * a.cos()) as f32);
                data.push((r * a.sin()) as f32);
                y.push(c);
            }
            (
                Features {
                    data,
                    rows: n,
                    dim: 2,
                },
                y,
            )
        };
        let (x, y) = make(80);
        let (t, ty) = make(200);
        let svm = Svm::fit(&x, &y, 2, 10.0, scale_gamma(&x)).unwrap();
        assert_eq!(super::super::accuracy(&svm.predict(&t), &ty), 1.0);
        // Cross-validated C (even the smallest C separates the rings here: with every alpha at
        // C the machine is a Parzen-window classifier, and the first best is taken).
        let (svm, c) = fit_cross_validated(&x, &y, 2, 0).unwrap();
        assert_eq!(c, 1e-4);
        assert_eq!(super::super::accuracy(&svm.predict(&t), &ty), 1.0);
        // Too few items for cross-validation: the hard margin.
        let few = x.select(&(0..20).collect::<Vec<_>>());
        assert_eq!(
            fit_cross_validated(&few, &y[..20], 2, 0).unwrap().1,
            f64::INFINITY
        );
    }
}
