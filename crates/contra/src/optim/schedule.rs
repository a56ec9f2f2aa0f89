//! Linear warmup then cosine (or linear) decay, per step.
//!
//! `lr(s) = peak * (s + 1) / warmup` for the first `warmup` steps, then with
//! `t = (s - warmup) / (total - warmup)`: `final + (peak - final) * (1 + cos(pi * t)) / 2`
//! (cosine), or `final + (peak - final) * (1 - t)` (linear, the Hugging Face trainer's default
//! that sentence-transformers uses).
//! Any peak is accepted, including the values above 1 that LARS recipes use.

use serde::{Deserialize, Serialize};

/// The `[schedule]` table of a recipe.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleSpec {
    /// Warmup length in epochs (fractions allowed).
    pub warmup_epochs: f64,
    /// What follows the warmup.
    pub decay: Decay,
    /// Learning rate at the end, as a fraction of the peak.
    pub final_fraction: f64,
}

/// The learning rate after warmup: `cosine` or `linear` decay to the final fraction, or
/// `constant`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decay {
    #[default]
    Cosine,
    Linear,
    Constant,
}

impl ScheduleSpec {
    pub fn validate(&self) -> crate::error::Result<()> {
        use crate::error::Error;
        if !self.warmup_epochs.is_finite() || self.warmup_epochs < 0.0 {
            return Err(Error::config(
                "schedule.warmup_epochs",
                "must be a non-negative number",
            ));
        }
        if !(0.0..=1.0).contains(&self.final_fraction) {
            return Err(Error::config(
                "schedule.final_fraction",
                "must be in [0, 1]",
            ));
        }
        Ok(())
    }
}

#[derive(Clone, Debug)]
pub struct Schedule {
    pub peak: f64,
    pub warmup_steps: u64,
    pub total_steps: u64,
    pub decay: Decay,
    pub final_lr: f64,
}

impl Schedule {
    pub fn new(spec: &ScheduleSpec, peak: f64, steps_per_epoch: u64, epochs: u64) -> Self {
        let total = steps_per_epoch * epochs;
        Self {
            peak,
            warmup_steps: ((spec.warmup_epochs * steps_per_epoch as f64).round() as u64).min(total),
            total_steps: total,
            decay: spec.decay,
            final_lr: peak * spec.final_fraction,
        }
    }

    pub fn lr(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return self.peak * (step + 1) as f64 / self.warmup_steps as f64;
        }
        if self.decay == Decay::Constant || self.total_steps <= self.warmup_steps {
            return self.peak;
        }
        let t = ((step - self.warmup_steps) as f64 / (self.total_steps - self.warmup_steps) as f64)
            .min(1.0);
        let left = match self.decay {
            Decay::Linear => 1.0 - t,
            _ => 0.5 * (1.0 + (std::f64::consts::PI * t).cos()),
        };
        self.final_lr + (self.peak - self.final_lr) * left
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine_with_a_peak_above_one() {
        let s = Schedule::new(
            &ScheduleSpec {
                warmup_epochs: 1.0,
                ..Default::default()
            },
            4.8,
            10,
            3,
        );
        assert_eq!(s.warmup_steps, 10);
        assert!((s.lr(0) - 0.48).abs() < 1e-12);
        assert!((s.lr(9) - 4.8).abs() < 1e-12);
        assert!((s.lr(10) - 4.8).abs() < 1e-12);
        assert!((s.lr(20) - 2.4).abs() < 1e-12);
        assert!(s.lr(29) < 0.05 && s.lr(29) > 0.0);
    }

    /// Linear decay (Hugging Face's default): a straight line from the peak to the final
    /// learning rate after the warmup.
    #[test]
    fn warmup_then_linear_decay() {
        let s = Schedule::new(
            &ScheduleSpec {
                warmup_epochs: 0.1,
                decay: Decay::Linear,
                final_fraction: 0.0,
            },
            2e-5,
            100,
            1,
        );
        assert_eq!(s.warmup_steps, 10);
        assert!((s.lr(4) - 1e-5).abs() < 1e-15);
        assert!((s.lr(10) - 2e-5).abs() < 1e-15);
        assert!((s.lr(55) - 1e-5).abs() < 1e-15);
        assert!((s.lr(100) - 0.0).abs() < 1e-15);
    }
}
