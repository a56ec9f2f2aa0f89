//! Evaluation of an embedding: features from a frozen encoder, weighted kNN, a linear probe,
//! and their few-label variants, each also on raw pixels as the baseline; anomaly scores and
//! their metrics, retrieval metrics, and diagnostics of the embedding space.

pub mod anomaly;
pub mod features;
pub mod fewshot;
pub mod knn;
pub mod linear;
pub mod report;
pub mod retrieval;
pub mod scores;
pub mod space;

/// Fraction of equal entries.
pub fn accuracy(pred: &[u32], truth: &[u32]) -> f64 {
    assert_eq!(pred.len(), truth.len());
    if pred.is_empty() {
        return 0.0;
    }
    pred.iter().zip(truth).filter(|(a, b)| a == b).count() as f64 / pred.len() as f64
}

/// Row-major feature matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct Features {
    pub data: Vec<f32>,
    pub rows: usize,
    pub dim: usize,
}

impl Features {
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    pub fn select(&self, idx: &[usize]) -> Features {
        let mut data = Vec::with_capacity(idx.len() * self.dim);
        idx.iter()
            .for_each(|&i| data.extend_from_slice(self.row(i)));
        Features {
            data,
            rows: idx.len(),
            dim: self.dim,
        }
    }
}
