//! L-BFGS (Nocedal 1980; Liu & Nocedal 1989) for small smooth problems held on the host, such
//! as the linear probe's multinomial logistic regression: the two-loop recursion over the last
//! `history` steps, with a backtracking line search that keeps the Armijo condition and skips
//! curvature pairs with `s·y <= 0`.

/// Stopping rules and memory.
#[derive(Clone, Debug)]
pub struct LbfgsConfig {
    pub history: usize,
    pub max_iter: usize,
    /// Stop when the largest absolute gradient entry is at most this.
    pub grad_tol: f64,
    /// Stop when the objective changes by at most this, relative to its size.
    pub rel_tol: f64,
}

impl Default for LbfgsConfig {
    fn default() -> Self {
        Self {
            history: 10,
            max_iter: 1000,
            grad_tol: 1e-6,
            rel_tol: 1e-12,
        }
    }
}

#[derive(Clone, Debug)]
pub struct LbfgsResult {
    pub x: Vec<f64>,
    pub value: f64,
    pub iterations: usize,
    /// A stopping rule was met (not the iteration limit, not a failed line search).
    pub converged: bool,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn max_abs(a: &[f64]) -> f64 {
    a.iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// Minimise `objective`, which returns the value and gradient at a point, from `x0`.
pub fn minimize(
    mut objective: impl FnMut(&[f64]) -> (f64, Vec<f64>),
    x0: Vec<f64>,
    cfg: &LbfgsConfig,
) -> LbfgsResult {
    let mut x = x0;
    let (mut f, mut g) = objective(&x);
    let mut s_hist: Vec<Vec<f64>> = Vec::new();
    let mut y_hist: Vec<Vec<f64>> = Vec::new();
    let mut rho: Vec<f64> = Vec::new();
    for iter in 0..cfg.max_iter {
        if !f.is_finite() || max_abs(&g) <= cfg.grad_tol {
            return LbfgsResult {
                x,
                value: f,
                iterations: iter,
                converged: f.is_finite(),
            };
        }
        // Two-loop recursion: d = -H g.
        let mut q = g.clone();
        let mut alpha = vec![0.0; s_hist.len()];
        for i in (0..s_hist.len()).rev() {
            alpha[i] = rho[i] * dot(&s_hist[i], &q);
            q.iter_mut()
                .zip(&y_hist[i])
                .for_each(|(q, y)| *q -= alpha[i] * y);
        }
        let gamma = match (s_hist.last(), y_hist.last()) {
            (Some(s), Some(y)) => dot(s, y) / dot(y, y),
            _ => 1.0 / max_abs(&g).max(1.0),
        };
        q.iter_mut().for_each(|v| *v *= gamma);
        for i in 0..s_hist.len() {
            let beta = rho[i] * dot(&y_hist[i], &q);
            q.iter_mut()
                .zip(&s_hist[i])
                .for_each(|(q, s)| *q += (alpha[i] - beta) * s);
        }
        let mut d: Vec<f64> = q.iter().map(|v| -v).collect();
        let mut slope = dot(&g, &d);
        if slope >= 0.0 {
            // Not a descent direction (numerical trouble): restart from steepest descent.
            s_hist.clear();
            y_hist.clear();
            rho.clear();
            d = g.iter().map(|v| -v / max_abs(&g).max(1.0)).collect();
            slope = dot(&g, &d);
        }
        // Backtracking line search with the Armijo condition.
        let mut step = 1.0;
        let mut accepted = None;
        for _ in 0..40 {
            let xn: Vec<f64> = x.iter().zip(&d).map(|(x, d)| x + step * d).collect();
            let (fn_, gn) = objective(&xn);
            if fn_.is_finite() && fn_ <= f + 1e-4 * step * slope {
                accepted = Some((xn, fn_, gn));
                break;
            }
            step *= 0.5;
        }
        let Some((xn, fn_, gn)) = accepted else {
            return LbfgsResult {
                x,
                value: f,
                iterations: iter,
                converged: false,
            };
        };
        let s: Vec<f64> = xn.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = gn.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 * dot(&y, &y).sqrt() * dot(&s, &s).sqrt() {
            if s_hist.len() == cfg.history {
                s_hist.remove(0);
                y_hist.remove(0);
                rho.remove(0);
            }
            s_hist.push(s);
            y_hist.push(y);
            rho.push(1.0 / sy);
        }
        let change = (f - fn_).abs();
        x = xn;
        g = gn;
        let previous = f;
        f = fn_;
        if change <= cfg.rel_tol * previous.abs().max(f.abs()).max(1.0) {
            return LbfgsResult {
                x,
                value: f,
                iterations: iter + 1,
                converged: true,
            };
        }
    }
    LbfgsResult {
        x,
        value: f,
        iterations: cfg.max_iter,
        converged: max_abs(&g) <= cfg.grad_tol,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_rosenbrock_minimum() {
        let rosen = |x: &[f64]| {
            let (a, b) = (x[0], x[1]);
            let f = (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2);
            let g = vec![
                -2.0 * (1.0 - a) - 400.0 * a * (b - a * a),
                200.0 * (b - a * a),
            ];
            (f, g)
        };
        let r = minimize(rosen, vec![-1.2, 1.0], &LbfgsConfig::default());
        assert!(r.converged, "{r:?}");
        assert!(
            (r.x[0] - 1.0).abs() < 1e-5 && (r.x[1] - 1.0).abs() < 1e-5,
            "{r:?}"
        );
    }

    #[test]
    fn solves_a_quadratic_exactly() {
        // f = 1/2 x'Ax - b'x with A = diag(1..=20): minimum at b_i / i.
        let n = 20;
        let quad = |x: &[f64]| {
            let f = (0..n)
                .map(|i| 0.5 * (i + 1) as f64 * x[i] * x[i] - x[i])
                .sum();
            let g = (0..n).map(|i| (i + 1) as f64 * x[i] - 1.0).collect();
            (f, g)
        };
        let r = minimize(quad, vec![0.0; n], &LbfgsConfig::default());
        assert!(r.converged);
        for (i, v) in r.x.iter().enumerate() {
            assert!((v - 1.0 / (i + 1) as f64).abs() < 1e-6);
        }
    }
}
