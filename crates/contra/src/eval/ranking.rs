//! Measures of text evaluation: correlation of similarities with gold scores (STS: Pearson and
//! Spearman), and ranked retrieval against graded relevance judgements (BEIR, with
//! pytrec_eval's definitions: nDCG@k with the grade as gain, MRR@k, recall@k, MAP@k).

use std::collections::HashMap;

/// Pearson's correlation of `x` and `y` (0 where either is constant).
pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    assert_eq!(x.len(), y.len());
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    if sxx == 0.0 || syy == 0.0 {
        return 0.0;
    }
    sxy / (sxx * syy).sqrt()
}

/// Ranks from 1, ties given their average rank.
fn ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut out = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            out[k] = rank;
        }
        i = j + 1;
    }
    out
}

/// Spearman's rank correlation (Pearson's of the ranks, ties averaged).
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    pearson(&ranks(x), &ranks(y))
}

/// Retrieval measures averaged over queries.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct RankingScores {
    pub queries: usize,
    pub ndcg_at_10: f64,
    pub mrr_at_10: f64,
    pub recall_at_1: f64,
    pub recall_at_10: f64,
    pub recall_at_100: f64,
    pub map_at_100: f64,
}

/// Scores of ranked documents (`ranked[q]`: document ids, best first) against `relevant[q]`
/// (document id -> grade; grade 0 is not relevant). Queries without a relevant document are
/// left out, as BEIR leaves them out.
pub fn rank_scores(ranked: &[Vec<String>], relevant: &[HashMap<String, u32>]) -> RankingScores {
    let mut s = RankingScores::default();
    for (docs, rel) in ranked.iter().zip(relevant) {
        let positive = rel.values().filter(|&&g| g > 0).count();
        if positive == 0 {
            continue;
        }
        s.queries += 1;
        let grade = |d: &String| rel.get(d).copied().unwrap_or(0);
        // nDCG@10: gain = grade, discount log2(rank + 1).
        let dcg: f64 = docs
            .iter()
            .take(10)
            .enumerate()
            .map(|(i, d)| grade(d) as f64 / (i as f64 + 2.0).log2())
            .sum();
        let mut ideal: Vec<u32> = rel.values().copied().filter(|&g| g > 0).collect();
        ideal.sort_unstable_by(|a, b| b.cmp(a));
        let idcg: f64 = ideal
            .iter()
            .take(10)
            .enumerate()
            .map(|(i, &g)| g as f64 / (i as f64 + 2.0).log2())
            .sum();
        s.ndcg_at_10 += dcg / idcg;
        if let Some(i) = docs.iter().take(10).position(|d| grade(d) > 0) {
            s.mrr_at_10 += 1.0 / (i + 1) as f64;
        }
        let found = |k: usize| docs.iter().take(k).filter(|d| grade(d) > 0).count() as f64;
        s.recall_at_1 += found(1) / positive as f64;
        s.recall_at_10 += found(10) / positive as f64;
        s.recall_at_100 += found(100) / positive as f64;
        let mut hits = 0.0;
        let mut ap = 0.0;
        for (i, d) in docs.iter().take(100).enumerate() {
            if grade(d) > 0 {
                hits += 1.0;
                ap += hits / (i + 1) as f64;
            }
        }
        s.map_at_100 += ap / positive as f64;
    }
    let n = s.queries.max(1) as f64;
    for v in [
        &mut s.ndcg_at_10,
        &mut s.mrr_at_10,
        &mut s.recall_at_1,
        &mut s.recall_at_10,
        &mut s.recall_at_100,
        &mut s.map_at_100,
    ] {
        *v /= n;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlations_as_scipy_computes_them() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let y = [2.0, 1.0, 4.0, 3.0, 5.0];
        // scipy.stats.pearsonr / spearmanr: 0.8 for both (the values are their own ranks).
        assert!((pearson(&x, &y) - 0.8).abs() < 1e-12);
        assert!((spearman(&x, &y) - 0.8).abs() < 1e-12);
        // Ties get average ranks: spearmanr([1, 2, 2, 3], [1, 2, 3, 4]) = 0.9486832980505138.
        let s = spearman(&[1.0, 2.0, 2.0, 3.0], &[1.0, 2.0, 3.0, 4.0]);
        assert!((s - 0.948_683_298_050_513_8).abs() < 1e-12, "{s}");
        assert_eq!(pearson(&[1.0, 1.0], &[1.0, 2.0]), 0.0);
    }

    #[test]
    fn ranking_scores_by_hand() {
        let ranked = vec![
            vec!["a".to_string(), "b".into(), "c".into()],
            vec!["x".to_string(), "y".into()],
            vec!["p".to_string()],
        ];
        let relevant = vec![
            HashMap::from([("b".to_string(), 2), ("c".to_string(), 1)]),
            HashMap::from([("x".to_string(), 1)]),
            // No relevant document: left out.
            HashMap::from([("p".to_string(), 0)]),
        ];
        let s = rank_scores(&ranked, &relevant);
        assert_eq!(s.queries, 2);
        // Query 1: DCG = 2/log2(3) + 1/log2(4); IDCG = 2/log2(2) + 1/log2(3).
        let dcg = 2.0 / 3f64.log2() + 0.5;
        let idcg = 2.0 + 1.0 / 3f64.log2();
        assert!((s.ndcg_at_10 - (dcg / idcg + 1.0) / 2.0).abs() < 1e-12);
        assert!((s.mrr_at_10 - (0.5 + 1.0) / 2.0).abs() < 1e-12);
        assert!((s.recall_at_1 - (0.0 + 1.0) / 2.0).abs() < 1e-12);
        assert!((s.recall_at_10 - 1.0).abs() < 1e-12);
        // AP of query 1: (1/2 + 2/3) / 2.
        assert!((s.map_at_100 - ((0.5 + 2.0 / 3.0) / 2.0 + 1.0) / 2.0).abs() < 1e-12);
    }
}
