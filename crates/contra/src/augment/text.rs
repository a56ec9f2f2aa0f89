//! Views of text for the loader: a pair's anchor, positive and optional hard negative, or (for
//! SimCSE) the same sentence twice, which dropout then makes two views of. Tokenized on the
//! loader's threads. Batches keep duplicate texts apart: a text that is already in a batch
//! (as any column) would be a false negative for its twin, so its item waits for a later
//! batch (sentence-transformers' no-duplicates sampler).

use super::loader::{BatchSource, Items, LoaderConfig, epoch_order};
use crate::data::Dataset;
use crate::data::sentences::TextDataset;
use crate::data::text::{TextBatch, TextTokenizer, TokenBatch};
use std::collections::HashSet;
use std::sync::Arc;

/// Text items and how their views are made.
pub struct TextViews {
    pub data: TextDataset,
    pub tokenizer: Arc<TextTokenizer>,
    /// SimCSE: each sentence twice; otherwise anchor, positive and negative.
    pub same_sentence: bool,
}

impl Items for TextViews {
    fn count(&self) -> usize {
        self.data.len()
    }
    fn item_labels(&self) -> Option<&[u32]> {
        self.data.labels.as_deref()
    }
}

impl TextViews {
    fn tokens(&self, texts: Vec<&str>) -> TokenBatch {
        // Truncation is set and every text is UTF-8: the tokenizer cannot fail here.
        self.tokenizer
            .encode(&texts)
            .expect("tokenizing UTF-8 text with truncation set")
    }
}

impl BatchSource for TextViews {
    type Batch = TextBatch;

    fn make_batch(
        &self,
        cfg: &LoaderConfig,
        epoch: u64,
        indices: &[usize],
    ) -> crate::error::Result<TextBatch> {
        fn column<'a>(c: &'a [String], indices: &[usize]) -> Vec<&'a str> {
            indices.iter().map(|&i| c[i].as_str()).collect()
        }
        let views = if self.same_sentence {
            let t = self.tokens(column(&self.data.texts, indices));
            vec![t.clone(), t]
        } else {
            let mut v = vec![self.tokens(column(&self.data.texts, indices))];
            v.extend(
                self.data
                    .positives
                    .as_ref()
                    .map(|p| self.tokens(column(p, indices))),
            );
            v.extend(
                self.data
                    .negatives
                    .as_ref()
                    .map(|n| self.tokens(column(n, indices))),
            );
            v
        };
        Ok(TextBatch {
            views,
            indices: indices.to_vec(),
            seed: cfg.seed,
            epoch,
            labels: self
                .data
                .labels
                .as_ref()
                .map(|l| indices.iter().map(|&i| l[i]).collect()),
        })
    }

    fn epoch_order(&self, cfg: &LoaderConfig, epoch: u64) -> Vec<usize> {
        let shuffled = epoch_order(cfg.seed, epoch, self, cfg.batch_size, cfg.per_class);
        no_duplicates(&shuffled, cfg.batch_size, |i| {
            if self.same_sentence {
                vec![self.data.texts[i].as_str()]
            } else {
                self.data.item_texts(i).collect()
            }
        })
    }
}

/// `order` regrouped into whole batches of `batch` in which no text appears twice: each batch
/// takes the waiting items in order, skipping those with a text already in it (they wait for
/// the next). What cannot fill a last batch is left out.
pub fn no_duplicates<'a>(
    order: &[usize],
    batch: usize,
    texts: impl Fn(usize) -> Vec<&'a str>,
) -> Vec<usize> {
    let mut waiting: Vec<usize> = order.to_vec();
    let mut out = Vec::with_capacity(order.len());
    while waiting.len() >= batch {
        let mut seen: HashSet<&str> = HashSet::new();
        let mut taken = Vec::with_capacity(batch);
        let mut skipped = Vec::new();
        let mut used = 0;
        for &i in &waiting {
            if taken.len() == batch {
                break;
            }
            used += 1;
            let t = texts(i);
            if t.iter().any(|s| seen.contains(s)) {
                skipped.push(i);
            } else {
                seen.extend(t);
                taken.push(i);
            }
        }
        if taken.len() < batch {
            break;
        }
        out.extend(taken);
        skipped.extend_from_slice(&waiting[used..]);
        waiting = skipped;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No batch holds a text twice (as anchor or positive); duplicates wait for a later batch.
    #[test]
    fn batches_keep_duplicate_texts_apart() {
        let texts = [
            ("a", "x"),
            ("a", "y"),
            ("b", "x"),
            ("c", "z"),
            ("d", "w"),
            ("e", "v"),
        ];
        let order: Vec<usize> = (0..6).collect();
        let out = no_duplicates(&order, 2, |i| vec![texts[i].0, texts[i].1]);
        assert_eq!(out, [0, 3, 1, 2, 4, 5]);
        for b in out.chunks(2) {
            let mut seen = HashSet::new();
            for &i in b {
                assert!(seen.insert(texts[i].0) && seen.insert(texts[i].1), "{b:?}");
            }
        }
        // Three copies of one text cannot share a batch of three: one batch is left out.
        let same = ["s", "s", "s", "t", "u", "v"];
        let out = no_duplicates(&order, 3, |i| vec![same[i]]);
        assert_eq!(out, [0, 3, 4]);
    }
}
