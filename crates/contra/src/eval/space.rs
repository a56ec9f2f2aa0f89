//! Diagnostics of an embedding space, on L2-normalised embeddings `f`:
//!
//! ```text
//! alignment    = mean_i ||f(a_i) - f(b_i)||^2              over positive pairs (a_i, b_i)
//! uniformity   = log mean_{i<j} exp(-2 ||f(x_i) - f(x_j)||^2)
//! effective rank = exp(-sum_k p_k log p_k),  p_k = s_k / sum_k s_k
//! ```
//!
//! Alignment and uniformity from Wang & Isola (2020), "Understanding Contrastive Representation
//! Learning through Alignment and Uniformity on the Hypersphere" (alpha = 2, t = 2; lower is
//! better for both). The effective rank of Roy & Vetterli (2007), with `s_k` the singular
//! values of the embedding matrix, as RankMe (Garrido et al. 2023) uses it to detect collapse:
//! 1 for a collapsed embedding, up to the dimension for a spread one.

use super::Features;
use rayon::prelude::*;

fn unit_rows(f: &Features) -> Vec<f64> {
    let mut out: Vec<f64> = f.data.iter().map(|&v| v as f64).collect();
    out.par_chunks_mut(f.dim.max(1)).for_each(|r| {
        let n = r.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
        r.iter_mut().for_each(|v| *v /= n);
    });
    out
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The diagnostics of two views `a`, `b` of the same items (row i of each is a positive pair).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SpaceReport {
    pub alignment: f64,
    /// Uniformity of the first view's embeddings.
    pub uniformity: f64,
    /// Effective rank of the first view's embeddings.
    pub effective_rank: f64,
    /// Mean cosine similarity of positive pairs.
    pub positive_cosine: f64,
    /// Mean cosine similarity of the first view's embeddings of different items.
    pub negative_cosine: f64,
}

pub fn diagnose(a: &Features, b: &Features) -> SpaceReport {
    assert_eq!((a.rows, a.dim), (b.rows, b.dim));
    let (ua, ub) = (unit_rows(a), unit_rows(b));
    let d = a.dim;
    let n = a.rows;
    let positive_cosine = (0..n)
        .map(|i| dot(&ua[i * d..(i + 1) * d], &ub[i * d..(i + 1) * d]))
        .sum::<f64>()
        / n.max(1) as f64;
    // For unit vectors ||x - y||^2 = 2 - 2 cos(x, y).
    let (exp_sum, cos_sum) = (0..n)
        .into_par_iter()
        .map(|i| {
            let x = &ua[i * d..(i + 1) * d];
            let mut e = 0.0;
            let mut c = 0.0;
            for j in i + 1..n {
                let cos = dot(x, &ua[j * d..(j + 1) * d]);
                e += (-2.0 * (2.0 - 2.0 * cos)).exp();
                c += cos;
            }
            (e, c)
        })
        .reduce(|| (0.0, 0.0), |x, y| (x.0 + y.0, x.1 + y.1));
    let pairs = (n * n.saturating_sub(1) / 2).max(1) as f64;
    SpaceReport {
        alignment: 2.0 - 2.0 * positive_cosine,
        uniformity: (exp_sum / pairs).ln(),
        effective_rank: effective_rank(a),
        positive_cosine,
        negative_cosine: cos_sum / pairs,
    }
}

/// Effective rank of the rows of `f` (not normalised, not centred, as RankMe).
pub fn effective_rank(f: &Features) -> f64 {
    let d = f.dim;
    // Singular values are the square roots of the eigenvalues of the d x d Gram matrix.
    let mut gram = vec![0f64; d * d];
    gram.par_chunks_mut(d).enumerate().for_each(|(p, row)| {
        for i in 0..f.rows {
            let x = f.row(i);
            let xp = x[p] as f64;
            if xp != 0.0 {
                row.iter_mut()
                    .zip(x)
                    .for_each(|(g, &v)| *g += xp * v as f64);
            }
        }
    });
    let eigen = symmetric_eigenvalues(gram, d);
    // The Gram matrix squares the condition number: eigenvalues below 1e-12 of the largest
    // are rounding noise (singular values below 1e-6 of the largest), not directions.
    let floor = eigen.iter().copied().fold(0.0, f64::max) * 1e-12;
    let singular: Vec<f64> = eigen
        .into_iter()
        .map(|l| if l > floor { l.sqrt() } else { 0.0 })
        .collect();
    let total: f64 = singular.iter().sum();
    if total <= 0.0 {
        return 0.0;
    }
    let entropy: f64 = singular
        .iter()
        .map(|s| s / total)
        .filter(|&p| p > 0.0)
        .map(|p| -p * p.ln())
        .sum();
    entropy.exp()
}

/// Eigenvalues of a symmetric `n x n` matrix (row-major), by faer's self-adjoint
/// eigensolver (tridiagonalisation and divide and conquer; 11 ms at n = 512 where cyclic
/// Jacobi rotations took 4.2 s).
pub fn symmetric_eigenvalues(a: Vec<f64>, n: usize) -> Vec<f64> {
    assert_eq!(a.len(), n * n, "an n x n matrix");
    if n == 0 {
        return Vec::new();
    }
    let m = faer::Mat::<f64>::from_fn(n, n, |i, j| a[i * n + j]);
    match m.self_adjoint_eigenvalues(faer::Side::Lower) {
        Ok(e) => e,
        // Non-finite input (a diverged run's embeddings): no spectrum to report.
        Err(_) => vec![f64::NAN; n],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(data: Vec<f32>, dim: usize) -> Features {
        Features {
            rows: data.len() / dim,
            data,
            dim,
        }
    }

    #[test]
    fn collapsed_and_spread_embeddings() {
        // Every row the same: rank 1, perfectly aligned, uniformity log(exp(0)) = 0.
        let same = features([1.0, 2.0, 3.0].repeat(5), 3);
        let r = diagnose(&same, &same);
        assert!((r.effective_rank - 1.0).abs() < 1e-9);
        assert!(r.alignment.abs() < 1e-12 && r.uniformity.abs() < 1e-12);
        // The standard basis: equal singular values, rank = dimension; distances all 2.
        let basis = features(
            vec![
                1., 0., 0., 0., 0., 1., 0., 0., 0., 0., 1., 0., 0., 0., 0., 1.,
            ],
            4,
        );
        let r = diagnose(&basis, &basis);
        assert!((r.effective_rank - 4.0).abs() < 1e-9);
        assert!((r.uniformity - (-4.0)).abs() < 1e-12);
        assert!(r.negative_cosine.abs() < 1e-12 && (r.positive_cosine - 1.0).abs() < 1e-12);
    }

    #[test]
    fn symmetric_eigenvalues_are_found() {
        let mut e = symmetric_eigenvalues(vec![2.0, 1.0, 0.0, 1.0, 2.0, 0.0, 0.0, 0.0, 5.0], 3);
        e.sort_by(f64::total_cmp);
        for (got, want) in e.iter().zip([1.0, 3.0, 5.0]) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
        // A random Gram matrix: the eigenvalues sum to the trace, their squares to the
        // squared Frobenius norm, and all are non-negative.
        let (n, d) = (40, 12);
        let mut rng = crate::rng::Rng::new(5);
        let x: Vec<f64> = (0..n * d).map(|_| rng.normal()).collect();
        let mut g = vec![0f64; d * d];
        for r in x.chunks(d) {
            for p in 0..d {
                for q in 0..d {
                    g[p * d + q] += r[p] * r[q];
                }
            }
        }
        let trace: f64 = (0..d).map(|i| g[i * d + i]).sum();
        let frob: f64 = g.iter().map(|v| v * v).sum();
        let e = symmetric_eigenvalues(g, d);
        assert!(e.iter().all(|&l| l > 0.0));
        assert!((e.iter().sum::<f64>() - trace).abs() < 1e-9 * trace);
        assert!((e.iter().map(|l| l * l).sum::<f64>() - frob).abs() < 1e-9 * frob);
    }
}
