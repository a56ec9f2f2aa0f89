//! Two-dimensional maps of an embedding: PCA and t-SNE.
//!
//! t-SNE (van der Maaten & Hinton 2008, "Visualizing Data using t-SNE") is the exact O(n²)
//! algorithm with scikit-learn's defaults: the inputs first reduced to 50 principal
//! components, conditional probabilities from a binary search to the perplexity, symmetrised
//! `P`; Student-t similarities `Q` in 2-D; 1,000 iterations of gradient descent with momentum
//! (0.5, then 0.8) and per-coordinate gains, `P` exaggerated 12x for the first 250, learning
//! rate `max(n / 12 / 4, 50)`, and a PCA initialisation scaled to standard deviation 1e-4.
//! Meant for a few thousand points (maps subsample larger sets).

use super::Features;
use rayon::prelude::*;

/// The top `k` principal directions of the centred rows (power iteration with deflation on
/// the covariance), each of unit length, and the column means.
pub fn principal_axes(f: &Features, k: usize) -> (Vec<Vec<f64>>, Vec<f64>) {
    let (n, d) = (f.rows, f.dim);
    let mut mean = vec![0f64; d];
    for r in 0..n {
        mean.iter_mut()
            .zip(f.row(r))
            .for_each(|(m, &v)| *m += v as f64);
    }
    mean.iter_mut().for_each(|m| *m /= n.max(1) as f64);
    // Covariance (d x d), accumulated per row block in a fixed order.
    let blocks: Vec<Vec<f64>> = (0..n)
        .collect::<Vec<_>>()
        .par_chunks(256)
        .map(|rows| {
            let mut c = vec![0f64; d * d];
            let mut x = vec![0f64; d];
            for &r in rows {
                x.iter_mut()
                    .zip(f.row(r))
                    .zip(&mean)
                    .for_each(|((x, &v), m)| *x = v as f64 - m);
                for i in 0..d {
                    let xi = x[i];
                    c[i * d..(i + 1) * d]
                        .iter_mut()
                        .zip(&x)
                        .for_each(|(c, xj)| *c += xi * xj);
                }
            }
            c
        })
        .collect();
    let mut cov = vec![0f64; d * d];
    for b in &blocks {
        cov.iter_mut().zip(b).for_each(|(c, v)| *c += v);
    }
    let mut axes: Vec<Vec<f64>> = Vec::new();
    for a in 0..k.min(d) {
        // Deterministic start, not orthogonal to any axis in general.
        let mut v: Vec<f64> = (0..d)
            .map(|i| 1.0 + ((i * 7 + a * 13) % 11) as f64 / 10.0)
            .collect();
        for _ in 0..500 {
            let mut w: Vec<f64> = (0..d)
                .map(|i| {
                    cov[i * d..(i + 1) * d]
                        .iter()
                        .zip(&v)
                        .map(|(c, x)| c * x)
                        .sum()
                })
                .collect();
            for prev in &axes {
                let p: f64 = w.iter().zip(prev).map(|(a, b)| a * b).sum();
                w.iter_mut().zip(prev).for_each(|(w, b)| *w -= p * b);
            }
            let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm < 1e-300 {
                break;
            }
            w.iter_mut().for_each(|x| *x /= norm);
            let change: f64 = w.iter().zip(&v).map(|(a, b)| (a - b).abs()).sum();
            v = w;
            if change < 1e-10 {
                break;
            }
        }
        // Sign convention: the largest entry positive.
        let big = v
            .iter()
            .fold(0f64, |m, x| if x.abs() > m.abs() { *x } else { m });
        if big < 0.0 {
            v.iter_mut().for_each(|x| *x = -*x);
        }
        axes.push(v);
    }
    (axes, mean)
}

/// Rows projected on the top `k` principal axes: `n x k`, row-major.
pub fn pca(f: &Features, k: usize) -> Features {
    let (axes, mean) = principal_axes(f, k);
    let k = axes.len();
    let data = (0..f.rows)
        .flat_map(|r| {
            let row = f.row(r);
            axes.iter()
                .map(|a| {
                    row.iter()
                        .zip(&mean)
                        .zip(a)
                        .map(|((&v, m), w)| (v as f64 - m) * w)
                        .sum::<f64>() as f32
                })
                .collect::<Vec<_>>()
        })
        .collect();
    Features {
        data,
        rows: f.rows,
        dim: k,
    }
}

#[derive(Clone, Debug)]
pub struct TsneConfig {
    pub perplexity: f64,
    pub iterations: usize,
}

impl Default for TsneConfig {
    fn default() -> Self {
        Self {
            perplexity: 30.0,
            iterations: 1000,
        }
    }
}

/// Row i of the conditional probabilities `p_{j|i}` for squared distances `d`, with the
/// Gaussian's precision found by bisection so that the entropy is `ln(perplexity)`.
fn conditional_row(d: &[f64], i: usize, perplexity: f64) -> Vec<f64> {
    let target = perplexity.ln();
    let (mut beta, mut lo, mut hi) = (1.0f64, 0.0f64, f64::INFINITY);
    let mut p = vec![0f64; d.len()];
    for _ in 0..100 {
        let mut sum = 0.0;
        for (j, (pj, &dj)) in p.iter_mut().zip(d).enumerate() {
            *pj = if j == i { 0.0 } else { (-dj * beta).exp() };
            sum += *pj;
        }
        let sum = sum.max(1e-300);
        let mut entropy = 0.0;
        for (pj, &dj) in p.iter_mut().zip(d) {
            *pj /= sum;
            entropy += beta * dj * *pj;
        }
        entropy += sum.ln();
        if (entropy - target).abs() < 1e-5 {
            break;
        }
        if entropy > target {
            lo = beta;
            beta = if hi.is_finite() {
                (beta + hi) / 2.0
            } else {
                beta * 2.0
            };
        } else {
            hi = beta;
            beta = (beta + lo) / 2.0;
        }
    }
    p
}

/// A t-SNE map of the rows: `n x 2`.
pub fn tsne(f: &Features, cfg: &TsneConfig) -> Features {
    let n = f.rows;
    if n < 3 {
        return pca(f, 2);
    }
    let x = if f.dim > 50 { pca(f, 50) } else { f.clone() };
    let d = x.dim;
    // Squared distances and the symmetric joint probabilities.
    let perplexity = cfg.perplexity.min((n - 1) as f64 / 3.0).max(1.0);
    let cond: Vec<Vec<f64>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let xi = x.row(i);
            let dist: Vec<f64> = (0..n)
                .map(|j| {
                    (0..d)
                        .map(|k| (xi[k] as f64 - x.row(j)[k] as f64).powi(2))
                        .sum()
                })
                .collect();
            conditional_row(&dist, i, perplexity)
        })
        .collect();
    let mut p = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..n {
            p[i * n + j] = ((cond[i][j] + cond[j][i]) / (2.0 * n as f64)).max(1e-12);
        }
    }
    // PCA start, scaled to standard deviation 1e-4 along the first axis.
    let init = pca(&x, 2);
    let sd = {
        let c: Vec<f64> = (0..n).map(|i| init.data[2 * i] as f64).collect();
        let m = c.iter().sum::<f64>() / n as f64;
        (c.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n as f64)
            .sqrt()
            .max(1e-12)
    };
    let mut y: Vec<f64> = init.data.iter().map(|&v| v as f64 / sd * 1e-4).collect();
    let mut update = vec![0f64; 2 * n];
    let mut gains = vec![1f64; 2 * n];
    let lr = (n as f64 / 12.0 / 4.0).max(50.0);
    let mut progress = crate::progress::Task::new("t-SNE", cfg.iterations, "iterations");
    for it in 0..cfg.iterations {
        let exaggeration = if it < 250 { 12.0 } else { 1.0 };
        let momentum = if it < 250 { 0.5 } else { 0.8 };
        // Student-t kernel rows and their sums (summed in row order: thread-count independent).
        let rows: Vec<(Vec<f64>, f64)> = (0..n)
            .into_par_iter()
            .map(|i| {
                let row: Vec<f64> = (0..n)
                    .map(|j| {
                        if i == j {
                            0.0
                        } else {
                            let dx = y[2 * i] - y[2 * j];
                            let dy = y[2 * i + 1] - y[2 * j + 1];
                            1.0 / (1.0 + dx * dx + dy * dy)
                        }
                    })
                    .collect();
                let s = row.iter().sum();
                (row, s)
            })
            .collect();
        let z: f64 = rows.iter().map(|r| r.1).sum::<f64>().max(1e-300);
        let grad: Vec<f64> = (0..n)
            .into_par_iter()
            .flat_map_iter(|i| {
                let (mut gx, mut gy) = (0.0, 0.0);
                for (j, &num) in rows[i].0.iter().enumerate() {
                    let m = (exaggeration * p[i * n + j] - num / z) * num;
                    gx += m * (y[2 * i] - y[2 * j]);
                    gy += m * (y[2 * i + 1] - y[2 * j + 1]);
                }
                [4.0 * gx, 4.0 * gy]
            })
            .collect();
        for k in 0..2 * n {
            gains[k] = if (grad[k] > 0.0) != (update[k] > 0.0) {
                gains[k] + 0.2
            } else {
                (gains[k] * 0.8).max(0.01)
            };
            update[k] = momentum * update[k] - lr * gains[k] * grad[k];
            y[k] += update[k];
        }
        progress.advance(1);
    }
    Features {
        data: y.into_iter().map(|v| v as f32).collect(),
        rows: n,
        dim: 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn clusters(per: usize, dim: usize, rng: &mut Rng) -> (Features, Vec<u32>) {
        let mut data = Vec::new();
        let mut labels = Vec::new();
        for c in 0..3 {
            for _ in 0..per {
                for k in 0..dim {
                    let centre = if k == c { 10.0 } else { 0.0 };
                    data.push((centre + rng.normal()) as f32);
                }
                labels.push(c as u32);
            }
        }
        (
            Features {
                data,
                rows: 3 * per,
                dim,
            },
            labels,
        )
    }

    #[test]
    fn pca_finds_the_direction_of_largest_variance() {
        // Variance 9 along (1, 1)/√2, 1 across it.
        let mut rng = Rng::new(5);
        let mut data = Vec::new();
        for _ in 0..2000 {
            let (a, b) = (3.0 * rng.normal(), rng.normal());
            let s = std::f64::consts::FRAC_1_SQRT_2;
            data.push(((a + b) * s + 5.0) as f32);
            data.push(((a - b) * s - 2.0) as f32);
        }
        let f = Features {
            data,
            rows: 2000,
            dim: 2,
        };
        let (axes, mean) = principal_axes(&f, 2);
        let s = std::f64::consts::FRAC_1_SQRT_2;
        assert!(
            (axes[0][0] - s).abs() < 0.02 && (axes[0][1] - s).abs() < 0.02,
            "{axes:?}"
        );
        assert!((axes[0][0] * axes[1][0] + axes[0][1] * axes[1][1]).abs() < 1e-9);
        assert!((mean[0] - 5.0).abs() < 0.2 && (mean[1] + 2.0).abs() < 0.2);
        let p = pca(&f, 1);
        let var = p.data.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / 2000.0;
        assert!((var - 9.0).abs() < 0.8, "{var}");
    }

    #[test]
    fn tsne_keeps_clusters_apart() {
        let mut rng = Rng::new(6);
        let (f, labels) = clusters(40, 8, &mut rng);
        let map = tsne(
            &f,
            &TsneConfig {
                perplexity: 10.0,
                iterations: 500,
            },
        );
        assert_eq!((map.rows, map.dim), (120, 2));
        // Every point's nearest neighbour in the map is of its own cluster.
        for i in 0..map.rows {
            let nearest = (0..map.rows)
                .filter(|&j| j != i)
                .min_by(|&a, &b| {
                    let da = (map.row(a)[0] - map.row(i)[0]).powi(2)
                        + (map.row(a)[1] - map.row(i)[1]).powi(2);
                    let db = (map.row(b)[0] - map.row(i)[0]).powi(2)
                        + (map.row(b)[1] - map.row(i)[1]).powi(2);
                    da.total_cmp(&db)
                })
                .unwrap();
            assert_eq!(labels[nearest], labels[i], "point {i}");
        }
        // The same input gives the same map.
        let again = tsne(
            &f,
            &TsneConfig {
                perplexity: 10.0,
                iterations: 500,
            },
        );
        assert_eq!(map, again);
    }
}
