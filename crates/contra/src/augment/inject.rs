//! Anomalies injected into the last steps of a window (its suspect part), the training
//! anomalies of NCAD (Carmona et al. 2022): point outliers, spikes and level shifts scaled by
//! the window's own spread, and the contextual outlier exposure that swaps in the suspect part
//! of another window. Each is drawn from the caller's generator; which channels it touches is
//! drawn too (each with probability 1/2, at least one).

use crate::error::{Error, Result};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};

/// One kind of injected anomaly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Injection {
    /// One step moved by 3 to 6 spreads, up or down.
    PointOutlier,
    /// A triangular bump of 2 to 5 steps, 3 to 6 spreads high, up or down.
    Spike,
    /// Every step from a point of the suspect part to the window's end moved by 2 to 5
    /// spreads.
    LevelShift,
    /// The suspect part replaced by another window's (contextual outlier exposure).
    Swap,
}

/// The relative weights of the injected kinds (`[method.inject]` of NCAD's recipe).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InjectionMix {
    pub point_outlier: f64,
    pub spike: f64,
    pub level_shift: f64,
    pub swap: f64,
}

impl Default for InjectionMix {
    fn default() -> Self {
        Self {
            point_outlier: 1.0,
            spike: 1.0,
            level_shift: 1.0,
            swap: 1.0,
        }
    }
}

impl InjectionMix {
    fn weights(&self) -> [(Injection, f64); 4] {
        [
            (Injection::PointOutlier, self.point_outlier),
            (Injection::Spike, self.spike),
            (Injection::LevelShift, self.level_shift),
            (Injection::Swap, self.swap),
        ]
    }

    pub fn validate(&self, key: &str) -> Result<()> {
        let w = self.weights();
        if w.iter().any(|(_, v)| !v.is_finite() || *v < 0.0) {
            return Err(Error::config(key, "weights must be zero or positive"));
        }
        if w.iter().all(|(_, v)| *v == 0.0) {
            return Err(Error::config(
                key,
                "give at least one kind a positive weight",
            ));
        }
        Ok(())
    }

    /// A kind drawn with the mix's weights.
    pub fn draw(&self, rng: &mut Rng) -> Injection {
        let w = self.weights();
        let total: f64 = w.iter().map(|(_, v)| v).sum();
        let mut u = rng.range(0.0, total);
        for (kind, v) in w {
            if u < v {
                return kind;
            }
            u -= v;
        }
        w.iter().rev().find(|(_, v)| *v > 0.0).expect("validated").0
    }
}

/// The standard deviation of the values that are not missing (0 without two).
pub fn spread(x: &[f32]) -> f32 {
    let v: Vec<f64> = x
        .iter()
        .filter(|v| !v.is_nan())
        .map(|&v| v as f64)
        .collect();
    if v.len() < 2 {
        return 0.0;
    }
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt() as f32
}

/// Inject `kind` into the last `suspect` steps of `window` (`channels x len` values, channel
/// after channel). A channel's scale is its spread in the window, at least `floor[c]`;
/// `other` is the window a swap takes its suspect part from.
#[allow(clippy::too_many_arguments)]
pub fn inject(
    window: &mut [f32],
    other: &[f32],
    channels: usize,
    len: usize,
    suspect: usize,
    kind: Injection,
    floor: &[f32],
    rng: &mut Rng,
) {
    assert!(suspect >= 1 && suspect < len && window.len() == channels * len);
    let mut touched: Vec<usize> = (0..channels).filter(|_| rng.bernoulli(0.5)).collect();
    if touched.is_empty() {
        touched.push(rng.below(channels));
    }
    let first = len - suspect;
    for c in touched {
        let x = &mut window[c * len..(c + 1) * len];
        let scale = spread(x).max(floor[c]);
        let sign = if rng.bernoulli(0.5) { 1.0 } else { -1.0 };
        match kind {
            Injection::PointOutlier => {
                x[first + rng.below(suspect)] += sign * rng.range(3.0, 6.0) as f32 * scale;
            }
            Injection::Spike => {
                let width = (2 + rng.below(4)).min(suspect);
                let start = first + rng.below(suspect - width + 1);
                let height = sign * rng.range(3.0, 6.0) as f32 * scale;
                for k in 0..width {
                    // 1 at the middle, falling towards both ends.
                    let from_middle = (2.0 * k as f32 - (width - 1) as f32).abs();
                    x[start + k] += height * (1.0 - from_middle / (width + 1) as f32);
                }
            }
            Injection::LevelShift => {
                let shift = sign * rng.range(2.0, 5.0) as f32 * scale;
                for v in &mut x[first + rng.below(suspect)..] {
                    *v += shift;
                }
            }
            Injection::Swap => {
                x[first..].copy_from_slice(&other[c * len + first..(c + 1) * len]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each kind changes only the suspect part, by the amounts its doc gives.
    #[test]
    fn injections_touch_only_the_suspect_part_by_their_scale() {
        let (len, suspect) = (20, 6);
        let window: Vec<f32> = (0..len).map(|t| (t as f32 * 0.7).sin()).collect();
        let other: Vec<f32> = vec![9.0; len];
        let scale = spread(&window);
        for kind in [
            Injection::PointOutlier,
            Injection::Spike,
            Injection::LevelShift,
            Injection::Swap,
        ] {
            for seed in 0..20 {
                let mut x = window.clone();
                let mut rng = Rng::new(seed);
                inject(&mut x, &other, 1, len, suspect, kind, &[0.0], &mut rng);
                assert_eq!(x[..len - suspect], window[..len - suspect], "{kind:?}");
                let moved: Vec<f32> = (len - suspect..len).map(|t| x[t] - window[t]).collect();
                let changed = moved.iter().filter(|d| d.abs() > 1e-6).count();
                let largest = moved.iter().fold(0f32, |m, d| m.max(d.abs()));
                match kind {
                    Injection::PointOutlier => {
                        assert_eq!(changed, 1);
                        assert!((3.0 * scale..=6.0 * scale).contains(&largest));
                    }
                    Injection::Spike => {
                        assert!((1..=5).contains(&changed));
                        assert!(largest <= 6.0 * scale && largest >= 3.0 * scale * 0.5);
                    }
                    Injection::LevelShift => {
                        assert!(changed >= 1);
                        // Every changed step moved by the same amount, to the window's end.
                        assert!(
                            moved
                                .iter()
                                .skip_while(|d| d.abs() < 1e-6)
                                .all(|d| (d - moved[suspect - 1]).abs() < 1e-5)
                        );
                        assert!((2.0 * scale..=5.0 * scale).contains(&largest));
                    }
                    Injection::Swap => assert!(x[len - suspect..].iter().all(|&v| v == 9.0)),
                }
            }
        }
        // A flat window takes its scale from the floor.
        let mut flat = vec![1.0f32; len];
        inject(
            &mut flat,
            &other,
            1,
            len,
            suspect,
            Injection::PointOutlier,
            &[0.5],
            &mut Rng::new(3),
        );
        let d = flat.iter().map(|v| (v - 1.0).abs()).fold(0f32, f32::max);
        assert!((1.5..=3.0).contains(&d), "{d}");
    }

    #[test]
    fn the_mix_draws_only_weighted_kinds_and_checks_its_weights() {
        let mix = InjectionMix {
            point_outlier: 0.0,
            spike: 1.0,
            level_shift: 3.0,
            swap: 0.0,
        };
        let mut rng = Rng::new(1);
        let draws: Vec<Injection> = (0..4000).map(|_| mix.draw(&mut rng)).collect();
        let shifts = draws
            .iter()
            .filter(|k| **k == Injection::LevelShift)
            .count();
        assert!(
            draws
                .iter()
                .all(|k| matches!(k, Injection::Spike | Injection::LevelShift))
        );
        assert!((2800..3200).contains(&shifts), "{shifts}");
        let none = InjectionMix {
            point_outlier: 0.0,
            spike: 0.0,
            level_shift: 0.0,
            swap: 0.0,
        };
        assert!(none.validate("method.inject").is_err());
        let negative = InjectionMix {
            swap: -1.0,
            ..InjectionMix::default()
        };
        assert!(
            negative
                .validate("method.inject")
                .unwrap_err()
                .to_string()
                .contains("method.inject")
        );
    }
}
