//! Weighted k-nearest-neighbour classification on cosine similarity, as in lightly's
//! benchmarks (after Wu et al. 2018, "Unsupervised Feature Learning via Non-Parametric
//! Instance Discrimination"): each of the `k` most similar training items votes for its class
//! with weight `exp(sim / t)`; the class with the largest total wins (ties: lowest class).

use super::Features;
use burn::prelude::*;
use rayon::prelude::*;

/// Predicted class for every test row. Similarities are computed on `device` in chunks of
/// test rows (one matrix product each), the top-k selection and vote on the host.
pub fn predict(
    train: &Features,
    train_labels: &[u32],
    test: &Features,
    num_classes: usize,
    k: usize,
    temperature: f32,
    device: &Device,
) -> Vec<u32> {
    assert_eq!(train.dim, test.dim);
    assert_eq!(train.rows, train_labels.len());
    let k = k.min(train.rows).max(1);
    let mut out = Vec::with_capacity(test.rows);
    super::cosine_blocks(test, train, device, |_, sims| {
        let preds: Vec<u32> = sims
            .par_chunks_exact(train.rows)
            .map(|row| vote(row, train_labels, num_classes, k, temperature))
            .collect();
        out.extend(preds);
    });
    out
}

fn vote(row: &[f32], labels: &[u32], num_classes: usize, k: usize, temperature: f32) -> u32 {
    let mut sims: Vec<(f32, u32)> = row.iter().copied().zip(labels.iter().copied()).collect();
    if k < sims.len() {
        sims.select_nth_unstable_by(k - 1, |x, y| y.0.total_cmp(&x.0));
    }
    let mut scores = vec![0f64; num_classes];
    for &(s, l) in &sims[..k] {
        scores[l as usize] += ((s / temperature) as f64).exp();
    }
    let mut best = 0;
    for c in 1..num_classes {
        if scores[c] > scores[best] {
            best = c;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_vote_matches_a_hand_computation() {
        // Train points on the unit circle; query at angle 0.
        let ang: [f32; 4] = [0.1, 0.2, 2.0, 2.1];
        let data = ang.iter().flat_map(|a| [a.cos(), a.sin()]).collect();
        let train = Features {
            data,
            rows: 4,
            dim: 2,
        };
        let labels = [0, 1, 1, 1];
        let test = Features {
            data: vec![1.0, 0.0],
            rows: 1,
            dim: 2,
        };
        let d = crate::device::parse("cpu").unwrap();
        // k=1: nearest is class 0.
        assert_eq!(predict(&train, &labels, &test, 2, 1, 0.1, &d), vec![0]);
        // k=2: cos 0.1 vs cos 0.2 weights: exp(9.95) > exp(9.80), so class 0 still wins.
        assert_eq!(predict(&train, &labels, &test, 2, 2, 0.1, &d), vec![0]);
        // k=4: class 1 has exp(9.80) + exp(-4.16) + exp(-5.05) < exp(9.95): class 0.
        assert_eq!(predict(&train, &labels, &test, 2, 4, 0.1, &d), vec![0]);
        // With a high temperature the votes are nearly equal and class 1's three votes win.
        assert_eq!(predict(&train, &labels, &test, 2, 4, 100.0, &d), vec![1]);
    }
}
