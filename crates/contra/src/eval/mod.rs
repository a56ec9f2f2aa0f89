//! Evaluation of an embedding: features from a frozen encoder, weighted kNN, a linear probe,
//! and their few-label variants, each also on raw pixels as the baseline; anomaly scores and
//! their metrics, retrieval metrics, and diagnostics of the embedding space.

pub mod anomaly;
pub mod features;
pub mod fewshot;
pub mod finetune;
pub mod knn;
pub mod linear;
pub mod map;
pub mod monitor;
pub mod ranges;
pub mod ranking;
pub mod report;
pub mod retrieval;
pub mod scores;
pub mod shifted;
pub mod space;
pub mod svm;
pub mod tfidf;

pub use crate::features::Features;
use crate::tensor_util::{tensor2, to_vec};
use burn::prelude::Device;
use rayon::prelude::*;

/// The rows of `f`, each scaled to unit length.
pub(crate) fn unit_rows(f: &Features) -> Vec<f32> {
    let mut out = f.data.clone();
    out.par_chunks_mut(f.dim.max(1)).for_each(|r| {
        let n = r.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        r.iter_mut().for_each(|v| *v /= n);
    });
    out
}

/// Cosine similarities of every query row with every reference row, one block of query rows
/// at a time (a matrix product on `device`, about 64 MiB of similarities each), so that large
/// sets never hold the whole matrix: `visit(first_row, block)` receives the block row-major,
/// `references.rows` values per query.
pub fn cosine_blocks(
    queries: &Features,
    references: &Features,
    device: &Device,
    mut visit: impl FnMut(usize, Vec<f32>),
) {
    assert_eq!(queries.dim, references.dim);
    let dim = references.dim;
    let n = references.rows;
    // The unit reference rows as a `dim x n` matrix, transposed on the host once, so that no
    // block's product copies a transposed view.
    let unit = unit_rows(references);
    let mut columns = vec![0f32; dim * n];
    columns
        .par_chunks_mut(n.max(1))
        .enumerate()
        .for_each(|(d, col)| {
            col.iter_mut()
                .enumerate()
                .for_each(|(r, v)| *v = unit[r * dim + d]);
        });
    drop(unit);
    let refs = tensor2(columns, [dim, n], device);
    let q = unit_rows(queries);
    let block = ((64 << 20) / (4 * n.max(1))).clamp(1, 4096);
    for start in (0..queries.rows).step_by(block) {
        let end = (start + block).min(queries.rows);
        let rows = tensor2(
            q[start * dim..end * dim].to_vec(),
            [end - start, dim],
            device,
        );
        visit(start, to_vec(rows.matmul(refs.clone())));
    }
}

/// Fraction of equal entries.
pub fn accuracy(pred: &[u32], truth: &[u32]) -> f64 {
    assert_eq!(pred.len(), truth.len());
    if pred.is_empty() {
        return 0.0;
    }
    pred.iter().zip(truth).filter(|(a, b)| a == b).count() as f64 / pred.len() as f64
}

/// Macro-averaged F1 as scikit-learn's `f1_score(average="macro")`: the unweighted mean of
/// each class's F1 over the classes that occur in the truth or the predictions (a class
/// never predicted, or never true, scores 0).
pub fn macro_f1(pred: &[u32], truth: &[u32], num_classes: usize) -> f64 {
    assert_eq!(pred.len(), truth.len());
    let classes = num_classes.max(
        pred.iter()
            .chain(truth)
            .map(|&c| c as usize + 1)
            .max()
            .unwrap_or(0),
    );
    let (mut tp, mut fp, mut fn_) = (
        vec![0u64; classes],
        vec![0u64; classes],
        vec![0u64; classes],
    );
    for (&p, &t) in pred.iter().zip(truth) {
        if p == t {
            tp[p as usize] += 1;
        } else {
            fp[p as usize] += 1;
            fn_[t as usize] += 1;
        }
    }
    let present: Vec<usize> = (0..classes)
        .filter(|&c| tp[c] + fp[c] + fn_[c] > 0)
        .collect();
    if present.is_empty() {
        return 0.0;
    }
    present
        .iter()
        .map(|&c| 2.0 * tp[c] as f64 / (2 * tp[c] + fp[c] + fn_[c]) as f64)
        .sum::<f64>()
        / present.len() as f64
}
