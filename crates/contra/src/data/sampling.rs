//! Drawing the labelled items of a few-label setting: the same items for every contender
//! of the few-label table, and for semi-supervised training.

use crate::error::{Error, Result};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};

/// How many labels each class gets.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Budget {
    PerClass(usize),
    /// A fraction of each class's items (at least one).
    Fraction(f64),
}

impl Budget {
    pub fn label(&self) -> String {
        match self {
            Budget::PerClass(n) => format!("{n}/class"),
            Budget::Fraction(f) => format!("{}%", f * 100.0),
        }
    }
}

impl std::str::FromStr for Budget {
    type Err = Error;
    /// `10` (per class) or `1%` / `0.01` (a fraction).
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::config(
                "label budget",
                format!("`{s}`; expected labels per class (10) or a fraction (1% or 0.01)"),
            )
        };
        let s = s.trim();
        if let Some(p) = s.strip_suffix('%') {
            let f: f64 = p.trim().parse().map_err(|_| bad())?;
            return if f > 0.0 && f <= 100.0 {
                Ok(Budget::Fraction(f / 100.0))
            } else {
                Err(bad())
            };
        }
        if let Ok(n) = s.parse::<usize>() {
            return if n > 0 {
                Ok(Budget::PerClass(n))
            } else {
                Err(bad())
            };
        }
        match s.parse::<f64>() {
            Ok(f) if f > 0.0 && f < 1.0 => Ok(Budget::Fraction(f)),
            _ => Err(bad()),
        }
    }
}

/// The labelled items for `budget` and `seed`, in increasing order. Each class's items are
/// shuffled with a generator derived from (seed, class), so a larger budget with the same seed
/// keeps the smaller one's items.
pub fn sample(labels: &[u32], num_classes: usize, budget: Budget, seed: u64) -> Vec<usize> {
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); num_classes];
    labels
        .iter()
        .enumerate()
        .for_each(|(i, &l)| by_class[l as usize].push(i));
    let mut out = Vec::new();
    for (c, mut idx) in by_class.into_iter().enumerate() {
        let take = match budget {
            Budget::PerClass(n) => n,
            Budget::Fraction(f) => ((f * idx.len() as f64).round() as usize).max(1),
        };
        Rng::derive(seed, &[0x4645_5753, c as u64]).shuffle(&mut idx);
        out.extend(idx.into_iter().take(take));
    }
    out.sort_unstable();
    out
}

/// A seeded split of `n` items into training and test indices (each sorted): `fraction` of
/// every class trains (rounded, and at least one item of a class of two or more on each
/// side), or of all items when unlabelled.
pub fn stratified_split(
    labels: Option<&[u32]>,
    n: usize,
    fraction: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let mut groups: std::collections::BTreeMap<u32, Vec<usize>> = Default::default();
    for i in 0..n {
        groups
            .entry(labels.map_or(0, |l| l[i]))
            .or_default()
            .push(i);
    }
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (class, mut idx) in groups {
        Rng::derive(seed, &[0x5350_4c54, class as u64]).shuffle(&mut idx);
        let len = idx.len();
        let keep = if len < 2 {
            len
        } else {
            ((fraction * len as f64).round() as usize).clamp(1, len - 1)
        };
        train.extend_from_slice(&idx[..keep]);
        test.extend_from_slice(&idx[keep..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    (train, test)
}

/// `n` indices per class (fewer when a class has fewer), drawn with `seed`.
pub fn sample_per_class(labels: &[u32], num_classes: usize, n: usize, seed: u64) -> Vec<usize> {
    sample(labels, num_classes, Budget::PerClass(n), seed)
}
