//! A BERT-family text encoder (Devlin et al. 2019, "BERT: Pre-training of Deep Bidirectional
//! Transformers"): word, absolute position and token-type embeddings, post-LayerNorm
//! transformer layers with GELU, an attention mask over padding, then pooling (mean, CLS or
//! max over the real tokens) and, where the model asks for it, L2 normalisation, as
//! sentence-transformers computes a sentence embedding.
//!
//! Sizes come from Hugging Face's `config.json`; pretrained weights from its
//! `model.safetensors` through burn's store (see [`load_weights`]). Dropout is keyed by the
//! rows ([`KeyedDropout`]): SimCSE and GradCache replay a pass with its masks, and a resumed
//! run draws the masks of an uninterrupted one.

use super::dropout::KeyedDropout;
use super::{Backbone, BatchInput, Views};
use crate::data::text::{TextBatch, TokenBatch};
use crate::error::{Error, Result};
use crate::rng::RowKeys;
use burn::module::Module;
use burn::nn::{
    Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig,
};
use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::activation::{gelu, softmax};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Sizes of a BERT model: the keys of Hugging Face's `config.json` that matter here.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    pub hidden_dropout_prob: f64,
    pub attention_probs_dropout_prob: f64,
    pub hidden_act: String,
    pub position_embedding_type: String,
}

impl Default for BertConfig {
    /// BERT-base's sizes (Hugging Face's defaults for a `config.json` that omits a key).
    fn default() -> Self {
        Self {
            vocab_size: 30522,
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            hidden_dropout_prob: 0.1,
            attention_probs_dropout_prob: 0.1,
            hidden_act: "gelu".into(),
            position_embedding_type: "absolute".into(),
        }
    }
}

impl BertConfig {
    /// A Hugging Face `config.json` (other keys are ignored).
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let cfg: Self = serde_json::from_str(&text)
            .map_err(|e| Error::format(path, format!("not a BERT config.json: {e}")))?;
        cfg.validate()
            .map_err(|e| Error::format(path, e.to_string()))?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ];
        for (key, v) in positive {
            if v == 0 {
                return Err(Error::config(key, "must be positive"));
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(Error::config(
                "hidden_size",
                format!(
                    "{} is not a multiple of num_attention_heads ({})",
                    self.hidden_size, self.num_attention_heads
                ),
            ));
        }
        if self.layer_norm_eps.is_nan() || self.layer_norm_eps <= 0.0 {
            return Err(Error::config("layer_norm_eps", "must be positive"));
        }
        for (key, p) in [
            ("hidden_dropout_prob", self.hidden_dropout_prob),
            (
                "attention_probs_dropout_prob",
                self.attention_probs_dropout_prob,
            ),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(Error::config(key, format!("{p} is not in [0, 1)")));
            }
        }
        if self.hidden_act != "gelu" {
            return Err(Error::config(
                "hidden_act",
                format!("`{}`; contra's BERT has gelu only", self.hidden_act),
            ));
        }
        if self.position_embedding_type != "absolute" {
            return Err(Error::config(
                "position_embedding_type",
                format!(
                    "`{}`; contra's BERT has absolute positions only",
                    self.position_embedding_type
                ),
            ));
        }
        Ok(())
    }

    /// A freshly initialised model (BERT's initialisation: normal weights of deviation 0.02,
    /// zero biases, unit LayerNorm).
    pub fn init(&self, device: &Device) -> Bert {
        let init = Initializer::Normal {
            mean: 0.0,
            std: 0.02,
        };
        let h = self.hidden_size;
        let linear = |i, o| {
            LinearConfig::new(i, o)
                .with_initializer(init.clone())
                .init(device)
        };
        let norm = || {
            LayerNormConfig::new(h)
                .with_epsilon(self.layer_norm_eps)
                .init(device)
        };
        let embedding = |n| {
            EmbeddingConfig::new(n, h)
                .with_initializer(init.clone())
                .init(device)
        };
        let layers = (0..self.num_hidden_layers)
            .map(|i| {
                let dropout = |k: u64| 1 + 3 * i as u64 + k;
                BertLayer {
                    query: linear(h, h),
                    key: linear(h, h),
                    value: linear(h, h),
                    attention_output: linear(h, h),
                    attention_norm: norm(),
                    intermediate: linear(h, self.intermediate_size),
                    output: linear(self.intermediate_size, h),
                    output_norm: norm(),
                    heads: self.num_attention_heads,
                    attention_dropout: KeyedDropout::new(
                        self.attention_probs_dropout_prob,
                        dropout(0),
                    ),
                    attention_output_dropout: KeyedDropout::new(
                        self.hidden_dropout_prob,
                        dropout(1),
                    ),
                    output_dropout: KeyedDropout::new(self.hidden_dropout_prob, dropout(2)),
                }
            })
            .collect();
        Bert {
            embeddings: BertEmbeddings {
                word_embeddings: embedding(self.vocab_size),
                position_embeddings: embedding(self.max_position_embeddings),
                token_type_embeddings: embedding(self.type_vocab_size),
                layer_norm: norm(),
                dropout: KeyedDropout::new(self.hidden_dropout_prob, 0),
            },
            layers,
        }
    }
}

/// Token batches on a device: `[rows, len]` ids, token types and the attention mask (1 for a
/// real token, 0 for padding).
#[derive(Clone, Debug)]
pub struct Tokens {
    pub ids: Tensor<2, Int>,
    pub type_ids: Tensor<2, Int>,
    pub mask: Tensor<2>,
}

impl Tokens {
    pub fn new(batch: &TokenBatch, device: &Device) -> Self {
        let shape = [batch.rows, batch.len];
        let int =
            |v: &[i64]| Tensor::<2, Int>::from_data(TensorData::new(v.to_vec(), shape), device);
        let mask: Vec<f32> = batch.attention.iter().map(|&m| m as f32).collect();
        Self {
            ids: int(&batch.ids),
            type_ids: int(&batch.type_ids),
            mask: Tensor::from_data(TensorData::new(mask, shape), device),
        }
    }

    /// Rows `start..start + len`, at the batch's length.
    pub fn rows(&self, start: usize, len: usize) -> Self {
        Self {
            ids: self.ids.clone().narrow(0, start, len),
            type_ids: self.type_ids.clone().narrow(0, start, len),
            mask: self.mask.clone().narrow(0, start, len),
        }
    }

    /// The same tokens on `device` (GradCache's pass without a graph runs off autodiff).
    pub fn to_device(&self, device: &Device) -> Self {
        Self {
            ids: Tensor::from_data(self.ids.clone().into_data(), device),
            type_ids: Tensor::from_data(self.type_ids.clone().into_data(), device),
            mask: Tensor::from_data(self.mask.clone().into_data(), device),
        }
    }

    /// Cut to the longest real sequence of its rows (a slice of a batch padded for longer
    /// ones).
    pub fn trimmed(self) -> Self {
        let [rows, len] = self.ids.dims();
        let lengths = self.mask.clone().sum_dim(1).into_data();
        let longest = lengths.iter::<f32>().fold(0f32, f32::max).round().max(1.0) as usize;
        if longest >= len || rows == 0 {
            return self;
        }
        Self {
            ids: self.ids.narrow(1, 0, longest),
            type_ids: self.type_ids.narrow(1, 0, longest),
            mask: self.mask.narrow(1, 0, longest),
        }
    }

    /// Padded to `len` tokens (id 0, masked out).
    fn pad_to(self, len: usize) -> Self {
        let [rows, have] = self.ids.dims();
        if have == len {
            return self;
        }
        let device = self.ids.device();
        let extra = [rows, len - have];
        Self {
            ids: Tensor::cat(vec![self.ids, Tensor::zeros(extra, &device)], 1),
            type_ids: Tensor::cat(vec![self.type_ids, Tensor::zeros(extra, &device)], 1),
            mask: Tensor::cat(vec![self.mask, Tensor::zeros(extra, &device)], 1),
        }
    }
}

impl BatchInput for Tokens {
    type Host = TextBatch;
    type Rows = TokenBatch;

    fn upload_rows(rows: TokenBatch, device: &Device) -> Self {
        Tokens::new(&rows, device)
    }

    fn upload(batch: TextBatch, device: &Device) -> Views<Tokens> {
        let keys = (0..batch.views.len())
            .map(|v| RowKeys::view(batch.seed, batch.epoch, &batch.indices, v))
            .collect();
        Views {
            views: batch.views.iter().map(|b| Tokens::new(b, device)).collect(),
            labels: batch.labels,
            keys,
        }
    }

    fn views_in(batch: &TextBatch) -> u64 {
        batch.views.iter().map(|v| v.rows as u64).sum()
    }

    fn cat(parts: Vec<Self>) -> Self {
        let len = parts.iter().map(|p| p.ids.dims()[1]).max().unwrap_or(0);
        let parts: Vec<Tokens> = parts.into_iter().map(|p| p.pad_to(len)).collect();
        let (mut ids, mut types, mut masks) = (vec![], vec![], vec![]);
        for p in parts {
            ids.push(p.ids);
            types.push(p.type_ids);
            masks.push(p.mask);
        }
        Self {
            ids: Tensor::cat(ids, 0),
            type_ids: Tensor::cat(types, 0),
            mask: Tensor::cat(masks, 0),
        }
    }

    fn items(&self) -> usize {
        self.ids.dims()[0]
    }
}

#[derive(Module, Debug)]
pub struct BertEmbeddings {
    pub word_embeddings: Embedding,
    pub position_embeddings: Embedding,
    pub token_type_embeddings: Embedding,
    pub layer_norm: LayerNorm,
    pub dropout: KeyedDropout,
}

/// One transformer layer: self-attention, then the feed-forward block, each added to its
/// input and LayerNorm-ed after (post-LN).
#[derive(Module, Debug)]
pub struct BertLayer {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub attention_output: Linear,
    pub attention_norm: LayerNorm,
    pub intermediate: Linear,
    pub output: Linear,
    pub output_norm: LayerNorm,
    pub heads: usize,
    pub attention_dropout: KeyedDropout,
    pub attention_output_dropout: KeyedDropout,
    pub output_dropout: KeyedDropout,
}

impl BertLayer {
    /// `x`: `[b, s, h]`; `mask_bias`: `[b, 1, 1, s]`, 0 for real tokens and very negative for
    /// padding.
    fn forward(&self, x: Tensor<3>, mask_bias: Tensor<4>, keys: Option<&RowKeys>) -> Tensor<3> {
        let [b, s, h] = x.dims();
        let (nh, dh) = (self.heads, h / self.heads);
        let split = |t: Tensor<3>| t.reshape([b, s, nh, dh]).swap_dims(1, 2);
        let q = split(self.query.forward(x.clone()));
        let k = split(self.key.forward(x.clone()));
        let v = split(self.value.forward(x.clone()));
        let scores = q.matmul(k.swap_dims(2, 3)) / (dh as f64).sqrt() + mask_bias;
        // Masks drawn per (row, head, query) along the keys, and per (row, position) along
        // the hidden units: a padded copy of a sequence keeps its real tokens' masks.
        let probs = self
            .attention_dropout
            .forward_streams(softmax(scores, 3), keys, 2);
        let context = probs.matmul(v).swap_dims(1, 2).reshape([b, s, h]);
        let attended = self.attention_output_dropout.forward_streams(
            self.attention_output.forward(context),
            keys,
            1,
        );
        let x = self.attention_norm.forward(attended + x);
        let inner = gelu(self.intermediate.forward(x.clone()));
        let out = self
            .output_dropout
            .forward_streams(self.output.forward(inner), keys, 1);
        self.output_norm.forward(out + x)
    }
}

/// BERT's embeddings and transformer layers: token states `[b, s, hidden]`.
#[derive(Module, Debug)]
pub struct Bert {
    pub embeddings: BertEmbeddings,
    pub layers: Vec<BertLayer>,
}

impl Bert {
    pub fn hidden_size(&self) -> usize {
        self.embeddings.word_embeddings.weight.dims()[1]
    }

    pub fn vocab_size(&self) -> usize {
        self.embeddings.word_embeddings.weight.dims()[0]
    }

    pub fn max_positions(&self) -> usize {
        self.embeddings.position_embeddings.weight.dims()[0]
    }

    /// Token states of every position; `keys` name the rows in training (dropout).
    pub fn forward(&self, tokens: &Tokens, keys: Option<&RowKeys>) -> Tensor<3> {
        let [b, s] = tokens.ids.dims();
        assert!(
            s <= self.max_positions(),
            "{s} tokens exceed the model's {} positions",
            self.max_positions()
        );
        let device = tokens.ids.device();
        let e = &self.embeddings;
        let positions = Tensor::<1, Int>::arange(0..s as i64, &device).reshape([1, s]);
        let x = e.word_embeddings.forward(tokens.ids.clone())
            + e.position_embeddings.forward(positions)
            + e.token_type_embeddings.forward(tokens.type_ids.clone());
        let mut x = e.dropout.forward_streams(e.layer_norm.forward(x), keys, 1);
        // Padding gets a very negative score (not -inf: a row of padding only stays finite).
        let mask_bias = ((tokens.mask.clone() - 1.0) * 1e30).reshape([b, 1, 1, s]);
        for layer in &self.layers {
            x = layer.forward(x, mask_bias.clone(), keys);
        }
        x
    }
}

/// How token states become one vector (sentence-transformers' `1_Pooling/config.json`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// The mean of the real tokens' states.
    #[default]
    Mean,
    /// The first token's ([CLS]) state.
    Cls,
    /// The largest value of each dimension over the real tokens.
    Max,
}

impl Pooling {
    /// `states`: `[b, s, h]`; `mask`: `[b, s]`.
    pub fn pool(self, states: Tensor<3>, mask: Tensor<2>) -> Tensor<2> {
        let [b, s, h] = states.dims();
        match self {
            Pooling::Cls => states.narrow(1, 0, 1).reshape([b, h]),
            Pooling::Mean => {
                let m = mask.reshape([b, s, 1]);
                let count = m.clone().sum_dim(1).clamp_min(1e-9).reshape([b, 1]);
                (states * m).sum_dim(1).reshape([b, h]) / count
            }
            Pooling::Max => {
                // Padding is set to -1e9 first, as sentence-transformers does.
                let pad = mask.reshape([b, s, 1]).equal_elem(0.0).expand([b, s, h]);
                states.mask_fill(pad, -1e9).max_dim(1).reshape([b, h])
            }
        }
    }
}

/// A sentence encoder: BERT, pooling and (optionally) L2 normalisation.
#[derive(Module, Debug)]
pub struct TextEncoder {
    pub bert: Bert,
    #[module(skip)]
    pub pooling: Pooling,
    pub normalize: bool,
}

impl TextEncoder {
    /// Sentence embeddings (inference).
    pub fn forward(&self, tokens: &Tokens) -> Tensor<2> {
        self.embed(tokens, None)
    }

    pub fn embed(&self, tokens: &Tokens, keys: Option<&RowKeys>) -> Tensor<2> {
        let states = self.bert.forward(tokens, keys);
        let pooled = self.pooling.pool(states, tokens.mask.clone());
        if self.normalize {
            // F.normalize: x / max(|x|, 1e-12).
            let norm = pooled
                .clone()
                .powf_scalar(2.0)
                .sum_dim(1)
                .sqrt()
                .clamp_min(1e-12);
            pooled / norm
        } else {
            pooled
        }
    }
}

impl Backbone for TextEncoder {
    type Input = Tokens;

    fn forward_rows(&self, x: Tokens, keys: Option<&RowKeys>) -> Tensor<2> {
        self.embed(&x, keys)
    }

    fn output_dim(&self) -> usize {
        self.bert.hidden_size()
    }
}

/// Hugging Face's names of BERT's tensors, rewritten to this module's (regex, replacement).
/// A `bert.` prefix (checkpoints with task heads) is dropped.
const HF_KEYS: &[(&str, &str)] = &[
    (r"^bert\.", ""),
    (r"^embeddings\.LayerNorm\.", "embeddings.layer_norm."),
    (
        r"^encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.",
        "layers.$1.$2.",
    ),
    (
        r"^encoder\.layer\.(\d+)\.attention\.output\.dense\.",
        "layers.$1.attention_output.",
    ),
    (
        r"^encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.",
        "layers.$1.attention_norm.",
    ),
    (
        r"^encoder\.layer\.(\d+)\.intermediate\.dense\.",
        "layers.$1.intermediate.",
    ),
    (
        r"^encoder\.layer\.(\d+)\.output\.dense\.",
        "layers.$1.output.",
    ),
    (
        r"^encoder\.layer\.(\d+)\.output\.LayerNorm\.",
        "layers.$1.output_norm.",
    ),
];

/// Tensors of a Hugging Face BERT checkpoint that a sentence encoder does not use.
fn unused_ok(key: &str) -> bool {
    key.ends_with("position_ids")
        || key.starts_with("pooler.")
        || key.starts_with("bert.pooler.")
        || key.starts_with("cls.")
}

/// Hugging Face BERT weights (`model.safetensors`) into `bert`, through burn's store: keys
/// remapped, Linear weights transposed, LayerNorm weight and bias renamed. A missing,
/// misshapen or unexpected tensor is an error that names it.
pub fn load_weights(mut bert: Bert, path: &Path) -> Result<Bert> {
    use burn::store::{KeyRemapper, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
    if !path.is_file() {
        return Err(Error::NotFound {
            what: "BERT weights (model.safetensors)".into(),
            searched: vec![path.to_path_buf()],
        });
    }
    let remap = KeyRemapper::from_patterns(HF_KEYS.to_vec()).expect("valid patterns");
    let mut store = SafetensorsStore::from_file(path)
        .with_from_adapter(PyTorchToBurnAdapter)
        .remap(remap)
        .allow_partial(true)
        .validate(false);
    let result = bert
        .load_from(&mut store)
        .map_err(|e| Error::format(path, format!("cannot read BERT weights: {e}")))?;
    let mut problems: Vec<String> = result.errors.iter().map(|e| e.to_string()).collect();
    let missing: Vec<&String> = result.missing.iter().map(|(p, _)| p).collect();
    if !missing.is_empty() {
        problems.push(format!(
            "missing {} tensors the model needs: {}",
            missing.len(),
            list(&missing)
        ));
    }
    let unexpected: Vec<String> = result
        .unused
        .iter()
        .filter(|k| !unused_ok(k))
        .map(|k| hf_name(k))
        .collect();
    if !unexpected.is_empty() {
        problems.push(format!(
            "{} tensors a BERT of this config.json does not have: {}",
            unexpected.len(),
            list(&unexpected)
        ));
    }
    if !problems.is_empty() {
        return Err(Error::format(
            path,
            format!("not the weights of this BERT: {}", problems.join("; ")),
        ));
    }
    Ok(bert)
}

/// Hugging Face's name of one of this module's tensors (for messages about a file's names).
pub(crate) fn hf_name(ours: &str) -> String {
    let hf_param = |p: &str| match p {
        "gamma" => "weight".to_string(),
        "beta" => "bias".to_string(),
        p => p.to_string(),
    };
    let parts: Vec<&str> = ours.splitn(4, '.').collect();
    match parts.as_slice() {
        ["layers", n, field, param] => {
            let place = match *field {
                "query" | "key" | "value" => format!("attention.self.{field}"),
                "attention_output" => "attention.output.dense".into(),
                "attention_norm" => "attention.output.LayerNorm".into(),
                "intermediate" => "intermediate.dense".into(),
                "output" => "output.dense".into(),
                "output_norm" => "output.LayerNorm".into(),
                other => other.into(),
            };
            format!("encoder.layer.{n}.{place}.{}", hf_param(param))
        }
        ["embeddings", "layer_norm", param] => format!("embeddings.LayerNorm.{}", hf_param(param)),
        _ => ours.to_string(),
    }
}

/// The first few names of a list, and how many more.
fn list(names: &[impl AsRef<str>]) -> String {
    let shown: Vec<&str> = names.iter().take(4).map(AsRef::as_ref).collect();
    match names.len() {
        n if n > shown.len() => format!("{}, ... ({} more)", shown.join(", "), n - shown.len()),
        _ => shown.join(", "),
    }
}
