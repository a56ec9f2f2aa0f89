//! Exact nearest-neighbour search by cosine similarity: one matrix product per block of
//! queries (about 64 MiB of similarities at a time, so 100,000 x 100,000 runs in bounded
//! memory), top-k kept per query on the host.

use crate::eval::{Features, cosine_blocks};
use burn::prelude::Device;
use rayon::prelude::*;

/// One hit: the row in the index and its cosine similarity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    pub row: usize,
    pub similarity: f32,
}

/// The `k` rows of `index` most similar to each query row, most similar first (ties by lower
/// row). `exclude(query, row)` drops candidates (a query's own row, say).
pub fn top_k(
    queries: &Features,
    index: &Features,
    k: usize,
    exclude: impl Fn(usize, usize) -> bool + Sync,
    device: &Device,
) -> Vec<Vec<Hit>> {
    if k == 0 {
        return vec![Vec::new(); queries.rows];
    }
    let mut out = Vec::with_capacity(queries.rows);
    cosine_blocks(queries, index, device, |first, sims| {
        let hits: Vec<Vec<Hit>> = sims
            .par_chunks_exact(index.rows.max(1))
            .enumerate()
            .map(|(i, row)| {
                let q = first + i;
                // The k best so far, best first; a candidate enters only if it beats the last.
                let better = |a: &Hit, b: &Hit| {
                    a.similarity > b.similarity || (a.similarity == b.similarity && a.row < b.row)
                };
                let mut best: Vec<Hit> = Vec::with_capacity(k + 1);
                for (r, &s) in row.iter().enumerate() {
                    if exclude(q, r) || s.is_nan() {
                        continue;
                    }
                    let h = Hit {
                        row: r,
                        similarity: s,
                    };
                    if best.len() == k && !better(&h, &best[k - 1]) {
                        continue;
                    }
                    let at = best.partition_point(|b| better(b, &h));
                    best.insert(at, h);
                    best.truncate(k);
                }
                best
            })
            .collect();
        out.extend(hits);
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn equals_a_full_sort_and_spans_blocks() {
        // Enough index rows that the queries are split into several blocks.
        let mut rng = Rng::new(9);
        let make = |rows: usize, rng: &mut Rng| Features {
            data: (0..rows * 4).map(|_| rng.normal() as f32).collect(),
            rows,
            dim: 4,
        };
        let index = make(40_000, &mut rng);
        let queries = make(500, &mut rng);
        let d = crate::device::parse("cpu").unwrap();
        let hits = top_k(&queries, &index, 5, |q, r| q == r, &d);
        assert_eq!(hits.len(), 500);
        let unit = |f: &Features, i: usize| {
            let r = f.row(i);
            let n = r.iter().map(|v| v * v).sum::<f32>().sqrt();
            r.iter().map(|v| v / n).collect::<Vec<f32>>()
        };
        for q in [0, 123, 499] {
            let uq = unit(&queries, q);
            let mut all: Vec<(f32, usize)> = (0..index.rows)
                .filter(|&r| r != q)
                .map(|r| (unit(&index, r).iter().zip(&uq).map(|(a, b)| a * b).sum(), r))
                .collect();
            all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let want: Vec<usize> = all[..5].iter().map(|x| x.1).collect();
            let got: Vec<usize> = hits[q].iter().map(|h| h.row).collect();
            assert_eq!(got, want, "query {q}");
            assert!(hits[q].iter().all(|h| h.row != q));
            assert!((hits[q][0].similarity - all[0].0).abs() < 1e-5);
        }
    }
}
