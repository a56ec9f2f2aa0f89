//! Text as token batches: Hugging Face's `tokenizer.json` read by the `tokenizers` crate (the
//! same ids as Python's tokenizers), truncated at the recipe's maximum length and padded to
//! the longest item of each batch. (A packaged `tokenizer.json` may carry its own truncation
//! and padding, e.g. both at 128 for all-MiniLM-L6-v2: they are replaced.)

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// A batch of token ids, row-major `[rows, len]`, padded with the tokenizer's pad id.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenBatch {
    pub ids: Vec<i64>,
    /// 1 for a real token, 0 for padding.
    pub attention: Vec<i64>,
    pub type_ids: Vec<i64>,
    pub rows: usize,
    pub len: usize,
}

/// Views of a batch of text items, tokenized on the loader's threads: one token batch per
/// view (an anchor and its positive; or the same sentence twice, for SimCSE).
#[derive(Clone, Debug)]
pub struct TextBatch {
    pub views: Vec<TokenBatch>,
    /// The items' indices in the data set (row keys for dropout follow them).
    pub indices: Vec<usize>,
    pub seed: u64,
    pub epoch: u64,
    pub labels: Option<Vec<u32>>,
}

/// A tokenizer with contra's truncation and padding.
pub struct TextTokenizer {
    tokenizer: Tokenizer,
    /// The `tokenizer.json` it was read from (model files keep it).
    json: String,
    pub max_length: usize,
    pub path: PathBuf,
}

impl TextTokenizer {
    /// Read `tokenizer.json`; sequences are truncated at `max_length` tokens (special tokens
    /// included) and padded to the longest of their batch.
    pub fn from_file(path: &Path, max_length: usize) -> Result<Self> {
        if !path.is_file() {
            return Err(Error::NotFound {
                what: "a tokenizer.json".into(),
                searched: vec![path.to_path_buf()],
            });
        }
        let json = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_json(&json, max_length, path)
    }

    /// A `tokenizer.json` held in memory (a model file keeps one); `path` names it in
    /// errors.
    pub fn from_json(json: &str, max_length: usize, path: &Path) -> Result<Self> {
        if max_length < 2 {
            return Err(Error::config(
                "max_length",
                "must be at least 2 (the special tokens)",
            ));
        }
        let mut tokenizer: Tokenizer = json
            .parse()
            .map_err(|e| Error::format(path, format!("not a tokenizer.json: {e}")))?;
        let padding = tokenizer.get_padding().cloned().unwrap_or_default();
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..padding
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length,
                ..Default::default()
            }))
            .map_err(|e| Error::format(path, format!("cannot truncate at {max_length}: {e}")))?;
        Ok(Self {
            tokenizer,
            json: json.to_string(),
            max_length,
            path: path.to_path_buf(),
        })
    }

    /// The `tokenizer.json` text it was read from.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// Size of the vocabulary (special tokens included).
    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    /// The token batch of `texts`.
    pub fn encode(&self, texts: &[&str]) -> Result<TokenBatch> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| Error::format(&self.path, format!("cannot tokenize: {e}")))?;
        let len = encodings.first().map_or(0, |e| e.get_ids().len());
        let mut batch = TokenBatch {
            ids: Vec::with_capacity(texts.len() * len),
            attention: Vec::with_capacity(texts.len() * len),
            type_ids: Vec::with_capacity(texts.len() * len),
            rows: texts.len(),
            len,
        };
        for e in &encodings {
            debug_assert_eq!(e.get_ids().len(), len);
            batch.ids.extend(e.get_ids().iter().map(|&i| i as i64));
            batch
                .attention
                .extend(e.get_attention_mask().iter().map(|&m| m as i64));
            batch
                .type_ids
                .extend(e.get_type_ids().iter().map(|&t| t as i64));
        }
        Ok(batch)
    }
}
