//! Batches of image-caption pairs for CLIP: each image's view (the recipe's pipeline, one
//! view) and one of its captions, drawn per epoch from the seed, tokenized on the loader's
//! threads. A frozen tower's outputs are computed once before training and served from a
//! cache here instead (the frozen network then never runs in the loop).

use super::Pipeline;
use super::loader::{BatchSource, Items, LoaderConfig, ViewBatch, make_batch};
use crate::data::Dataset;
use crate::data::captions::ImageTextDataset;
use crate::data::text::{TextTokenizer, TokenBatch};
use crate::error::Result;
use crate::features::Features;
use crate::rng::Rng;
use std::sync::Arc;

/// Key of the caption draw in [`Rng::derive`].
const CAPTION: u64 = 0x4341_5031;

/// One side of a batch: the tower's inputs, or its cached outputs.
#[derive(Clone, Debug)]
pub enum Side<T> {
    Inputs(T),
    /// Rows of the frozen tower's outputs, `dim` wide.
    Cached {
        data: Vec<f32>,
        dim: usize,
    },
}

/// Images and their captions for one step.
#[derive(Clone, Debug)]
pub struct CaptionBatch {
    pub images: Side<ViewBatch>,
    pub texts: Side<TokenBatch>,
    pub indices: Vec<usize>,
    pub seed: u64,
    pub epoch: u64,
}

/// What the text side is made from.
pub enum TextSource {
    /// Captions tokenized each batch.
    Tokenizer(Arc<TextTokenizer>),
    /// A frozen text tower's outputs for each distinct caption, in
    /// [`ImageTextDataset::distinct_captions`] order.
    Cached(Features),
}

/// Image-caption pairs and how their batches are made.
pub struct CaptionViews {
    pub data: ImageTextDataset,
    /// The images' view, or a frozen image tower's outputs for every image.
    pub images: Result<Pipeline, Features>,
    pub texts: TextSource,
    /// Each image's captions' rows in the caption cache.
    cache_rows: Vec<Vec<u32>>,
}

impl CaptionViews {
    pub fn new(
        data: ImageTextDataset,
        images: Result<Pipeline, Features>,
        texts: TextSource,
    ) -> Self {
        let cache_rows = match &texts {
            TextSource::Tokenizer(_) => Vec::new(),
            TextSource::Cached(_) => {
                let distinct = data.distinct_captions();
                data.captions
                    .iter()
                    .map(|c| {
                        c.iter()
                            .map(|t| distinct.binary_search(&t.as_str()).expect("listed") as u32)
                            .collect()
                    })
                    .collect()
            }
        };
        Self {
            data,
            images,
            texts,
            cache_rows,
        }
    }

    /// Which of item `i`'s captions epoch `epoch` trains on.
    pub fn caption_of(&self, seed: u64, epoch: u64, i: usize) -> usize {
        let n = self.data.captions[i].len();
        if n == 1 {
            return 0;
        }
        Rng::derive(seed, &[CAPTION, epoch, i as u64]).below(n)
    }
}

impl Items for CaptionViews {
    fn count(&self) -> usize {
        self.data.len()
    }
    fn item_labels(&self) -> Option<&[u32]> {
        self.data.labels()
    }
}

fn cached_rows<T>(cache: &Features, rows: impl Iterator<Item = usize>) -> Side<T> {
    let mut data = Vec::new();
    for r in rows {
        data.extend_from_slice(cache.row(r));
    }
    Side::Cached {
        data,
        dim: cache.dim,
    }
}

impl BatchSource for CaptionViews {
    type Batch = CaptionBatch;

    fn make_batch(
        &self,
        cfg: &LoaderConfig,
        epoch: u64,
        indices: &[usize],
    ) -> Result<CaptionBatch> {
        let chosen: Vec<usize> = indices
            .iter()
            .map(|&i| self.caption_of(cfg.seed, epoch, i))
            .collect();
        let images = match &self.images {
            Ok(pipeline) => {
                let one = LoaderConfig {
                    views: 1,
                    ..cfg.clone()
                };
                Side::Inputs(make_batch(
                    &self.data.images,
                    pipeline,
                    &one,
                    epoch,
                    indices,
                )?)
            }
            Err(cache) => cached_rows(cache, indices.iter().copied()),
        };
        let texts = match &self.texts {
            TextSource::Tokenizer(tokenizer) => {
                let texts: Vec<&str> = indices
                    .iter()
                    .zip(&chosen)
                    .map(|(&i, &c)| self.data.captions[i][c].as_str())
                    .collect();
                // Truncation is set and captions are UTF-8: tokenizing cannot fail here.
                Side::Inputs(
                    tokenizer
                        .encode(&texts)
                        .expect("tokenizing UTF-8 text with truncation set"),
                )
            }
            TextSource::Cached(cache) => cached_rows(
                cache,
                indices
                    .iter()
                    .zip(&chosen)
                    .map(|(&i, &c)| self.cache_rows[i][c] as usize),
            ),
        };
        Ok(CaptionBatch {
            images,
            texts,
            indices: indices.to_vec(),
            seed: cfg.seed,
            epoch,
        })
    }
}
