//! Scores of a detector against binary labels (anomaly detection): AUROC, AUPRC (average
//! precision) and the best F1 over thresholds, with the definitions scikit-learn uses.
//!
//! Items are ranked by score, highest first; items of equal score form one threshold, so ties
//! are handled as `roc_auc_score`, `average_precision_score` and `precision_recall_curve` do:
//!
//! ```text
//! AUROC = trapezoidal area under (FPR, TPR) over the distinct thresholds
//! AP    = sum_n (R_n - R_{n-1}) * P_n          (no interpolation)
//! F1    = max_n 2 P_n R_n / (P_n + R_n)
//! ```

use crate::error::{Error, Result};

/// Cumulative (true positives, false positives) at each distinct threshold, highest first,
/// with the totals of positives and negatives.
struct Curve {
    points: Vec<(f64, f64)>,
    positives: f64,
    negatives: f64,
}

/// One score per label, none of them NaN.
pub(crate) fn check_scores(scores: &[f64], labels: &[bool]) -> Result<()> {
    if scores.len() != labels.len() {
        return Err(Error::other(format!(
            "{} scores for {} labels",
            scores.len(),
            labels.len()
        )));
    }
    match scores.iter().position(|s| s.is_nan()) {
        Some(i) => Err(Error::other(format!("score {i} is NaN"))),
        None => Ok(()),
    }
}

fn cumulative_counts(scores: &[f64], positive: &[bool]) -> Result<Curve> {
    check_scores(scores, positive)?;
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut points = Vec::new();
    for (k, &i) in order.iter().enumerate() {
        if positive[i] {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        let last_of_tie = order.get(k + 1).is_none_or(|&j| scores[j] != scores[i]);
        if last_of_tie {
            points.push((tp, fp));
        }
    }
    if tp == 0.0 || fp == 0.0 {
        return Err(Error::other(format!(
            "scores need both classes among the labels ({tp} positive, {fp} negative)"
        )));
    }
    Ok(Curve {
        points,
        positives: tp,
        negatives: fp,
    })
}

/// Area under the ROC curve; `positive[i]` marks the items that should score high.
pub fn auroc(scores: &[f64], positive: &[bool]) -> Result<f64> {
    let Curve {
        points,
        positives: p,
        negatives: n,
    } = cumulative_counts(scores, positive)?;
    let (mut area, mut prev) = (0.0, (0.0, 0.0));
    for &(tp, fp) in &points {
        area += (fp - prev.1) / n * (tp + prev.0) / (2.0 * p);
        prev = (tp, fp);
    }
    Ok(area)
}

/// Average precision, the area under the precision-recall curve without interpolation.
pub fn average_precision(scores: &[f64], positive: &[bool]) -> Result<f64> {
    let Curve {
        points,
        positives: p,
        ..
    } = cumulative_counts(scores, positive)?;
    let mut prev_recall = 0.0;
    let mut ap = 0.0;
    for &(tp, fp) in &points {
        let recall = tp / p;
        ap += (recall - prev_recall) * tp / (tp + fp);
        prev_recall = recall;
    }
    Ok(ap)
}

/// The best F1 over thresholds, and the threshold (items scoring at least it are positive).
pub fn best_f1(scores: &[f64], positive: &[bool]) -> Result<(f64, f64)> {
    let Curve {
        points,
        positives: p,
        ..
    } = cumulative_counts(scores, positive)?;
    let mut sorted: Vec<f64> = scores.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    sorted.dedup();
    let mut best = (0.0, sorted[0]);
    for (&(tp, fp), &threshold) in points.iter().zip(&sorted) {
        let (precision, recall) = (tp / (tp + fp), tp / p);
        if precision + recall > 0.0 {
            let f1 = 2.0 * precision * recall / (precision + recall);
            if f1 > best.0 {
                best = (f1, threshold);
            }
        }
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_reversed_and_tied_rankings() {
        let y = [true, true, false, false];
        assert_eq!(auroc(&[0.9, 0.8, 0.2, 0.1], &y).unwrap(), 1.0);
        assert_eq!(auroc(&[0.1, 0.2, 0.8, 0.9], &y).unwrap(), 0.0);
        assert_eq!(auroc(&[0.5; 4], &y).unwrap(), 0.5);
        assert_eq!(average_precision(&[0.5; 4], &y).unwrap(), 0.5);
        assert_eq!(best_f1(&[0.9, 0.8, 0.2, 0.1], &y).unwrap(), (1.0, 0.8));
        assert!(auroc(&[0.1, 0.2], &[true, true]).is_err());
        assert!(auroc(&[0.1, f64::NAN], &[true, false]).is_err());
    }
}
