//! Anomaly detection on streams, scored per time step as the field reports it.
//!
//! - **Per-step scores**: a step's score is the highest score of the windows that cover it.
//! - **Point adjustment at K%** (Kim et al. 2022, "Towards a Rigorous Evaluation of
//!   Time-Series Anomaly Detection", AAAI): a true anomaly segment counts as wholly detected
//!   when more than K% of its steps are flagged. K = 0 is the plain point adjustment, which
//!   the paper shows inflates F1 (a random score reaches high F1-PA); K = 100 adjusts nothing.
//!   F1 is taken at the best threshold (an oracle), and the area under F1 over K = 0, 10, ...,
//!   100 summarises the curve.
//! - **VUS** (Paparrizos et al. 2022, "Volume Under the Surface", VLDB): the range-AUC of
//!   ROC and PR curves, with labels extended by a buffer ramp of `sqrt(1 - d / l)` beside each
//!   segment, averaged over buffer lengths `l = 0..=L`, at 250 thresholds drawn from the
//!   sorted scores, exactly as TSB-UAD's `RangeAUC_volume_opt` computes them (`vus` 0.0.6).
//! - **Bootstrap intervals** for AUROC and AUPRC: percentiles of the metric over items resampled
//!   with replacement (seeded).

use crate::error::{Error, Result};
use crate::rng::Rng;

/// The anomaly segments of per-step labels: `(first, last)` steps, inclusive, in order.
pub fn segments(labels: &[bool]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (t, &l) in labels.iter().enumerate() {
        match (l, start) {
            (true, None) => start = Some(t),
            (false, Some(s)) => {
                out.push((s, t - 1));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, labels.len() - 1));
    }
    out
}

/// Per-step scores of a stream of `len` steps from the scores of windows of `window` steps
/// starting at `starts`: the highest score of the windows covering each step; `None` where no
/// window covers it.
pub fn step_scores(
    len: usize,
    starts: &[usize],
    scores: &[f64],
    window: usize,
) -> Vec<Option<f64>> {
    let mut out: Vec<Option<f64>> = vec![None; len];
    for (&s, &v) in starts.iter().zip(scores) {
        for slot in out.iter_mut().take((s + window).min(len)).skip(s) {
            *slot = Some(slot.map_or(v, |o: f64| o.max(v)));
        }
    }
    out
}

fn check(scores: &[f64], labels: &[bool]) -> Result<()> {
    super::scores::check_scores(scores, labels)?;
    if !labels.contains(&true) || !labels.contains(&false) {
        return Err(Error::other(
            "range metrics need both anomalous and normal steps",
        ));
    }
    Ok(())
}

/// How per-step scores separate anomalous steps, as the stream literature reports it.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct StepMetrics {
    pub auroc: f64,
    pub average_precision: f64,
    /// Best F1 with plain point adjustment (K = 0; an oracle threshold).
    pub f1_point_adjusted: f64,
    /// Area under the best F1 with point adjustment over K = 0..100%.
    pub f1_pa_k_area: f64,
    pub vus_roc: f64,
    pub vus_pr: f64,
    /// The largest VUS buffer, in steps.
    pub max_buffer: usize,
}

impl StepMetrics {
    /// The metrics of `scores` against `anomalous`, VUS with buffers up to `max_buffer`.
    pub fn of(scores: &[f64], anomalous: &[bool], max_buffer: usize) -> Result<Self> {
        use super::scores::{auroc, average_precision};
        let (vus_roc, vus_pr) = vus(scores, anomalous, max_buffer, 250)?;
        Ok(Self {
            auroc: auroc(scores, anomalous)?,
            average_precision: average_precision(scores, anomalous)?,
            f1_point_adjusted: best_pa_k_f1(scores, anomalous, 0.0)?.0,
            f1_pa_k_area: pa_k_area(scores, anomalous)?.0,
            vus_roc,
            vus_pr,
            max_buffer,
        })
    }
}

/// The best F1 over thresholds with point adjustment at `k` percent, and that threshold
/// (steps scoring at least it are flagged).
pub fn best_pa_k_f1(scores: &[f64], labels: &[bool], k: f64) -> Result<(f64, f64)> {
    check(scores, labels)?;
    let segs = segments(labels);
    let mut seg_of = vec![usize::MAX; labels.len()];
    for (i, &(s, e)) in segs.iter().enumerate() {
        seg_of[s..=e].iter_mut().for_each(|x| *x = i);
    }
    let positives = labels.iter().filter(|&&l| l).count() as f64;
    let adjusted = |count: usize, (s, e): (usize, usize)| {
        let len = e - s + 1;
        if count as f64 > k / 100.0 * len as f64 {
            len
        } else {
            count
        }
    };
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut counts = vec![0usize; segs.len()];
    let (mut flagged, mut hits, mut tp) = (0usize, 0usize, 0usize);
    let mut best = (0.0, scores[order[0]]);
    for (n, &i) in order.iter().enumerate() {
        flagged += 1;
        if let Some(&seg) = segs.get(seg_of[i]) {
            let c = &mut counts[seg_of[i]];
            tp -= adjusted(*c, seg);
            *c += 1;
            hits += 1;
            tp += adjusted(*c, seg);
        }
        let last_of_tie = order.get(n + 1).is_none_or(|&j| scores[j] != scores[i]);
        if last_of_tie {
            let fp = (flagged - hits) as f64;
            let fn_ = positives - tp as f64;
            let f1 = 2.0 * tp as f64 / (2.0 * tp as f64 + fp + fn_);
            if f1 > best.0 {
                best = (f1, scores[i]);
            }
        }
    }
    Ok(best)
}

/// The area under best F1-PA%K over K = 0, 10, ..., 100 (trapezoids, K as a fraction), and
/// the eleven F1 values.
pub fn pa_k_area(scores: &[f64], labels: &[bool]) -> Result<(f64, Vec<f64>)> {
    let f1: Vec<f64> = (0..=10)
        .map(|k| best_pa_k_f1(scores, labels, 10.0 * k as f64).map(|b| b.0))
        .collect::<Result<_>>()?;
    let area = f1.windows(2).map(|w| (w[0] + w[1]) / 2.0 * 0.1).sum();
    Ok((area, f1))
}

/// Segments grown by `half` steps on each side and merged where they meet (TSB-UAD's
/// `new_sequence`).
fn grown(segs: &[(usize, usize)], half: usize, len: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = segs[0].0.saturating_sub(half);
    for pair in segs.windows(2) {
        let end = pair[0].1 + half;
        // The next segment's grown start, where it does not reach back to this one.
        if pair[1].0 > half && end < pair[1].0 - half {
            out.push((start, end));
            start = pair[1].0 - half;
        }
    }
    out.push((start, (segs[segs.len() - 1].1 + half).min(len - 1)));
    out
}

/// VUS-ROC and VUS-PR with buffers of 0 to `max_buffer` steps, at `thresholds` score
/// thresholds (TSB-UAD uses 250).
pub fn vus(
    scores: &[f64],
    labels: &[bool],
    max_buffer: usize,
    thresholds: usize,
) -> Result<(f64, f64)> {
    check(scores, labels)?;
    let n = scores.len();
    let seq = segments(labels);
    let positives = labels.iter().filter(|&&l| l).count() as f64;
    let mut sorted = scores.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    // numpy's linspace(0, n - 1, thresholds).astype(int).
    let step = (n - 1) as f64 / (thresholds - 1).max(1) as f64;
    let cuts: Vec<f64> = (0..thresholds)
        .map(|k| {
            let i = if k + 1 == thresholds {
                n - 1
            } else {
                (k as f64 * step) as usize
            };
            sorted[i]
        })
        .collect();
    let flagged: Vec<f64> = cuts
        .iter()
        .map(|&c| scores.iter().filter(|&&s| s >= c).count() as f64)
        .collect();
    let (mut roc_sum, mut pr_sum) = (0.0, 0.0);
    for buffer in 0..=max_buffer {
        let half = buffer / 2;
        // Labels with the buffer ramp beside each segment.
        let mut extended: Vec<f64> = labels.iter().map(|&l| f64::from(u8::from(l))).collect();
        for &(s, e) in &seq {
            for (x, v) in extended
                .iter_mut()
                .enumerate()
                .take((e + half + 1).min(n))
                .skip(e + 1)
            {
                *v += (1.0 - (x - e) as f64 / buffer as f64).sqrt();
            }
            for (x, v) in extended
                .iter_mut()
                .enumerate()
                .take(s)
                .skip(s.saturating_sub(half))
            {
                *v += (1.0 - (s - x) as f64 / buffer as f64).sqrt();
            }
        }
        extended.iter_mut().for_each(|v| *v = v.min(1.0));
        let ranges = grown(&seq, half, n);
        let mut curve = vec![(0.0, 0.0)];
        let mut precision = Vec::with_capacity(thresholds);
        for (&cut, &n_pred) in cuts.iter().zip(&flagged) {
            let (mut tp, mut n_labels, mut existence) = (0.0, 0.0, 0usize);
            for &(a, b) in &ranges {
                let mut any = false;
                for t in a..=b {
                    let pred = scores[t] >= cut;
                    any |= pred;
                    let label = if labels[t] {
                        1.0
                    } else if pred {
                        extended[t]
                    } else {
                        0.0
                    };
                    n_labels += label;
                    if pred {
                        tp += label;
                    }
                }
                existence += usize::from(any);
            }
            let p_new = (positives + n_labels) / 2.0;
            let recall = (tp / p_new).min(1.0);
            let tpr = recall * existence as f64 / ranges.len() as f64;
            let fpr = (n_pred - tp) / (n as f64 - p_new);
            curve.push((tpr, fpr));
            precision.push(tp / n_pred);
        }
        curve.push((1.0, 1.0));
        roc_sum += curve
            .windows(2)
            .map(|w| (w[1].1 - w[0].1) * (w[1].0 + w[0].0) / 2.0)
            .sum::<f64>();
        pr_sum += curve[..=thresholds]
            .windows(2)
            .zip(&precision)
            .map(|(w, p)| (w[1].0 - w[0].0) * p)
            .sum::<f64>();
    }
    let buffers = (max_buffer + 1) as f64;
    Ok((roc_sum / buffers, pr_sum / buffers))
}

/// A 95% bootstrap interval of `metric` over `resamples` resamplings of the items with
/// replacement (seeded; a resample lacking either class is drawn again): the 2.5th and
/// 97.5th percentiles, interpolated linearly as NumPy's `percentile`.
pub fn bootstrap_interval(
    scores: &[f64],
    labels: &[bool],
    metric: impl Fn(&[f64], &[bool]) -> Result<f64>,
    resamples: usize,
    seed: u64,
) -> Result<(f64, f64)> {
    check(scores, labels)?;
    let n = scores.len();
    let mut rng = Rng::derive(seed, &[0x424f_4f54]);
    let mut values = Vec::with_capacity(resamples);
    let (mut s, mut l) = (vec![0.0; n], vec![false; n]);
    while values.len() < resamples {
        for k in 0..n {
            let i = rng.below(n);
            s[k] = scores[i];
            l[k] = labels[i];
        }
        if l.contains(&true) && l.contains(&false) {
            values.push(metric(&s, &l)?);
        }
    }
    values.sort_by(f64::total_cmp);
    Ok((percentile(&values, 2.5), percentile(&values, 97.5)))
}

/// The `q`-th percentile of sorted `values`, linear between ranks (NumPy's default).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q / 100.0 * (sorted.len() - 1) as f64;
    let (lo, frac) = (pos.floor() as usize, pos - pos.floor());
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_and_step_scores() {
        let y = [false, true, true, false, true];
        assert_eq!(segments(&y), vec![(1, 2), (4, 4)]);
        let s = step_scores(6, &[0, 2], &[0.5, 0.2], 3);
        assert_eq!(
            s,
            vec![Some(0.5), Some(0.5), Some(0.5), Some(0.2), Some(0.2), None]
        );
    }

    #[test]
    fn point_adjustment_counts_a_segment_once_enough_is_flagged() {
        // One segment of 4 steps; only its first step scores high.
        let y = [false, true, true, true, true, false, false, false];
        let s = [0.1, 0.9, 0.2, 0.2, 0.2, 0.15, 0.1, 0.1];
        // K = 0: flagging step 1 alone detects all 4 (F1 1).
        assert_eq!(best_pa_k_f1(&s, &y, 0.0).unwrap(), (1.0, 0.9));
        // K = 30: 1 of 4 (25%) is not enough; at threshold 0.2 all 4 are flagged, no FP.
        assert_eq!(best_pa_k_f1(&s, &y, 30.0).unwrap(), (1.0, 0.2));
        // K = 100: no adjustment, point-wise F1: at 0.9 one of four (F1 0.4), at 0.2 all.
        assert_eq!(best_pa_k_f1(&s, &y, 100.0).unwrap(), (1.0, 0.2));
        let early = [0.1, 0.9, 0.2, 0.2, 0.2, 0.3, 0.1, 0.1];
        // A normal step above the segment's tail: at K = 30 the best is 0.2 with one false
        // alarm (8/9); at K = 0 flagging step 1 alone already gives all four.
        assert_eq!(best_pa_k_f1(&early, &y, 30.0).unwrap(), (8.0 / 9.0, 0.2));
        assert_eq!(best_pa_k_f1(&early, &y, 0.0).unwrap(), (1.0, 0.9));
        let flat = [0.5; 8];
        let (f1, _) = best_pa_k_f1(&flat, &y, 0.0).unwrap();
        assert!((f1 - 2.0 * 4.0 / (8.0 + 4.0)).abs() < 1e-12);
    }

    #[test]
    fn bootstrap_intervals_hold_the_estimate_and_narrow_with_more_items() {
        use crate::eval::scores::auroc;
        let make = |n: usize| {
            let mut rng = Rng::new(3);
            let y: Vec<bool> = (0..n).map(|i| i % 4 == 0).collect();
            let s: Vec<f64> = y
                .iter()
                .map(|&a| rng.normal() + if a { 1.0 } else { 0.0 })
                .collect();
            (s, y)
        };
        let (s, y) = make(200);
        let (lo, hi) = bootstrap_interval(&s, &y, auroc, 500, 1).unwrap();
        let point = auroc(&s, &y).unwrap();
        assert!(
            lo < point && point < hi && hi - lo < 0.3,
            "{lo} {point} {hi}"
        );
        assert_eq!(
            bootstrap_interval(&s, &y, auroc, 500, 1).unwrap(),
            (lo, hi),
            "seeded"
        );
        let (s, y) = make(3200);
        let (lo4, hi4) = bootstrap_interval(&s, &y, auroc, 500, 1).unwrap();
        // Sixteen times the items: about a quarter of the width.
        let ratio = (hi4 - lo4) / (hi - lo);
        assert!((0.15..0.4).contains(&ratio), "{ratio}");
    }

    #[test]
    fn percentiles_interpolate_as_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 50.0), 2.5);
        assert_eq!(percentile(&v, 2.5), 1.075);
        assert_eq!(percentile(&v, 100.0), 4.0);
    }
}
