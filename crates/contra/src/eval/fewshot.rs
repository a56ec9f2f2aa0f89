//! Few-label evaluation: N labelled examples per class sampled with several seeds; kNN and the
//! linear probe are fitted on those alone and scored on the whole test set.

use super::{Features, accuracy, knn, linear};
use crate::rng::Rng;
use burn::prelude::Device;

/// `n` indices per class (fewer when a class has fewer), drawn with `seed`.
pub fn sample_per_class(labels: &[u32], num_classes: usize, n: usize, seed: u64) -> Vec<usize> {
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); num_classes];
    labels
        .iter()
        .enumerate()
        .for_each(|(i, &l)| by_class[l as usize].push(i));
    let mut out = Vec::new();
    for (c, mut idx) in by_class.into_iter().enumerate() {
        Rng::derive(seed, &[0x4645_5753, c as u64]).shuffle(&mut idx);
        out.extend(idx.into_iter().take(n));
    }
    out.sort_unstable();
    out
}

/// Mean and sample standard deviation.
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (m, var.sqrt())
}

#[derive(Clone, Debug)]
pub struct FewShotResult {
    pub labels_per_class: usize,
    pub knn: (f64, f64),
    pub probe: (f64, f64),
}

pub struct EvalSet<'a> {
    pub train: &'a Features,
    pub train_labels: &'a [u32],
    pub test: &'a Features,
    pub test_labels: &'a [u32],
    pub num_classes: usize,
}

/// kNN and probe accuracy (mean, std over `seeds`) with `n` labels per class.
pub fn evaluate(
    set: &EvalSet,
    n: usize,
    seeds: u64,
    k: usize,
    t: f32,
    probe: &linear::ProbeConfig,
    device: &Device,
) -> FewShotResult {
    let mut knn_acc = Vec::new();
    let mut probe_acc = Vec::new();
    for seed in 0..seeds {
        let idx = sample_per_class(set.train_labels, set.num_classes, n, seed);
        let f = set.train.select(&idx);
        let l: Vec<u32> = idx.iter().map(|&i| set.train_labels[i]).collect();
        let pred = knn::predict(&f, &l, set.test, set.num_classes, k, t, device);
        knn_acc.push(accuracy(&pred, set.test_labels));
        let cfg = linear::ProbeConfig {
            seed,
            ..probe.clone()
        };
        let pred = linear::fit_predict(&f, &l, set.test, set.num_classes, &cfg, device);
        probe_acc.push(accuracy(&pred, set.test_labels));
    }
    FewShotResult {
        labels_per_class: n,
        knn: mean_std(&knn_acc),
        probe: mean_std(&probe_acc),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_n_per_class_reproducibly() {
        let labels: Vec<u32> = (0..100).map(|i| i % 4).collect();
        let a = sample_per_class(&labels, 4, 3, 7);
        assert_eq!(a.len(), 12);
        for c in 0..4 {
            assert_eq!(a.iter().filter(|&&i| labels[i] == c).count(), 3);
        }
        assert_eq!(a, sample_per_class(&labels, 4, 3, 7));
        assert_ne!(a, sample_per_class(&labels, 4, 3, 8));
        let (m, s) = mean_std(&[1.0, 2.0, 3.0]);
        assert!((m - 2.0).abs() < 1e-12 && (s - 1.0).abs() < 1e-12);
    }
}
