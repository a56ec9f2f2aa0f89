//! Sentence encoders in the sentence-transformers folder layout: `config.json` and
//! `model.safetensors` (the BERT), `tokenizer.json`, `modules.json` (whether a Normalize module
//! follows the pooling), `1_Pooling/config.json` (mean, CLS or max) and
//! `sentence_bert_config.json` (the maximum sequence length). A plain Hugging Face BERT folder
//! (no `modules.json`) reads as mean pooling without normalisation, as sentence-transformers
//! treats one.

use super::bert::{BertConfig, Pooling, TextEncoder, Tokens, load_weights};
use crate::data::text::TextTokenizer;
use crate::error::{Error, Result};
use crate::features::Features;
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `kind = "bert"` in a recipe's `[encoder]` table: a sentence encoder from a folder in the
/// sentence-transformers (or Hugging Face) layout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BertSpec {
    /// The folder (required). A relative path not found from the working directory is looked
    /// up in `$CONTRA_DATA/models/` (`all-MiniLM-L6-v2`).
    pub path: PathBuf,
    /// Start from the folder's weights; `false` draws them afresh (the architecture and
    /// tokenizer only: training from scratch).
    pub pretrained: bool,
    /// Tokens per text, special tokens included (default: the folder's `max_seq_length`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    /// Pooling in place of the folder's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pooling: Option<Pooling>,
    /// L2 normalisation in place of the folder's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub normalize: Option<bool>,
    /// A smaller encoder from scratch (with `pretrained = false`): transformer layers,
    /// hidden size (the feed-forward is four times it) and attention heads in place of the
    /// folder's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hidden_size: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heads: Option<usize>,
}

impl Default for BertSpec {
    fn default() -> Self {
        Self {
            path: PathBuf::new(),
            pretrained: true,
            max_length: None,
            pooling: None,
            normalize: None,
            layers: None,
            hidden_size: None,
            heads: None,
        }
    }
}

/// What a model file keeps of its text encoder, beside the weights, so that it embeds
/// without the folder it started from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TextEncoderMeta {
    pub config: BertConfig,
    pub pooling: Pooling,
    pub normalize: bool,
    pub max_length: usize,
}

/// Metadata keys of a text model file.
pub const META_ENCODER: &str = "contra.text_encoder";
pub const META_TOKENIZER: &str = "contra.tokenizer";

impl TextEncoderMeta {
    /// A freshly initialised encoder of this shape (weights to be loaded into it).
    pub fn init(&self, device: &Device) -> TextEncoder {
        TextEncoder {
            bert: self.config.init(device),
            pooling: self.pooling,
            normalize: self.normalize,
        }
    }

    /// The metadata of a model file: the encoder's shape and its tokenizer.
    pub fn to_meta(&self, tokenizer: &TextTokenizer) -> Vec<(String, String)> {
        vec![
            (
                META_ENCODER.into(),
                serde_json::to_string(self).expect("serialisable"),
            ),
            (META_TOKENIZER.into(), tokenizer.json().to_string()),
        ]
    }

    /// The encoder's shape and tokenizer kept in a model file's metadata.
    pub fn from_meta(
        meta: &std::collections::HashMap<String, String>,
        path: &Path,
    ) -> Result<(Self, TextTokenizer)> {
        let (Some(enc), Some(tok)) = (meta.get(META_ENCODER), meta.get(META_TOKENIZER)) else {
            return Err(Error::format(
                path,
                "not a text model: it keeps no text encoder and tokenizer",
            ));
        };
        let me: Self = serde_json::from_str(enc)
            .map_err(|e| Error::format(path, format!("bad {META_ENCODER}: {e}")))?;
        let tokenizer = TextTokenizer::from_json(tok, me.max_length, path)?;
        check_tokenizer(&tokenizer, &me.config)?;
        Ok((me, tokenizer))
    }
}

impl BertSpec {
    pub fn validate(&self) -> Result<()> {
        if self.path.as_os_str().is_empty() {
            return Err(Error::config(
                "encoder.path",
                "kind `bert` needs the folder of a sentence encoder (all-MiniLM-L6-v2)",
            ));
        }
        if self.max_length.is_some_and(|n| n < 2) {
            return Err(Error::config("encoder.max_length", "must be at least 2"));
        }
        let resized = [self.layers, self.hidden_size, self.heads];
        if self.pretrained && resized.iter().any(Option::is_some) {
            return Err(Error::config(
                "encoder.layers",
                "layers, hidden_size and heads change the architecture: they need pretrained = false",
            ));
        }
        if resized.contains(&Some(0)) {
            return Err(Error::config(
                "encoder.layers",
                "layers, hidden_size and heads must be at least 1",
            ));
        }
        Ok(())
    }

    /// The folder, looked up in `$CONTRA_DATA/models/` when the path is relative and absent.
    pub fn folder(&self) -> Result<SentenceModelDir> {
        self.validate()?;
        let mut dir = self.path.clone();
        if dir.is_relative()
            && !dir.exists()
            && let Some(root) = crate::data::locate::data_root()
        {
            let there = root.join("models").join(&self.path);
            if there.exists() {
                dir = there;
            }
        }
        SentenceModelDir::open(&dir)
    }

    /// The folder's tokenizer and the encoder's shape, and where its weights are (unless
    /// training from scratch).
    pub fn prepare(&self) -> Result<PreparedBert> {
        let dir = self.folder()?;
        let tokenizer = dir.tokenizer(self.max_length)?;
        let mut config = dir.config.clone();
        if let Some(n) = self.layers {
            config.num_hidden_layers = n;
        }
        if let Some(h) = self.hidden_size {
            config.hidden_size = h;
            config.intermediate_size = 4 * h;
        }
        if let Some(n) = self.heads {
            config.num_attention_heads = n;
        }
        if !config
            .hidden_size
            .is_multiple_of(config.num_attention_heads)
        {
            return Err(Error::config(
                "encoder.heads",
                format!(
                    "the hidden size {} does not divide into {} heads",
                    config.hidden_size, config.num_attention_heads
                ),
            ));
        }
        let meta = TextEncoderMeta {
            config,
            pooling: self.pooling.unwrap_or(dir.pooling),
            normalize: self.normalize.unwrap_or(dir.normalize),
            max_length: tokenizer.max_length,
        };
        Ok(PreparedBert {
            tokenizer,
            meta,
            weights: self.pretrained.then(|| dir.weights_path()),
        })
    }
}

/// A recipe's text encoder before its weights are drawn or read.
pub struct PreparedBert {
    pub tokenizer: TextTokenizer,
    pub meta: TextEncoderMeta,
    pub weights: Option<PathBuf>,
}

impl PreparedBert {
    /// The encoder: its pretrained weights, or freshly drawn ones (draw inside
    /// `seeding::try_seeded` for a seeded start).
    pub fn encoder(&self, device: &Device) -> Result<TextEncoder> {
        let mut encoder = self.meta.init(device);
        if let Some(w) = &self.weights {
            encoder.bert = load_weights(encoder.bert, w)?;
        }
        Ok(encoder)
    }
}

/// What a sentence-transformers folder says about its model.
#[derive(Clone, Debug)]
pub struct SentenceModelDir {
    pub dir: PathBuf,
    pub config: BertConfig,
    pub pooling: Pooling,
    pub normalize: bool,
    /// sentence-transformers' `max_seq_length` (else the model's positions).
    pub max_length: usize,
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::format(path, format!("not JSON: {e}")))
}

impl SentenceModelDir {
    pub fn open(dir: &Path) -> Result<Self> {
        let config_path = dir.join("config.json");
        if !config_path.is_file() {
            return Err(Error::NotFound {
                what: "a sentence encoder (config.json, model.safetensors, tokenizer.json)".into(),
                searched: vec![dir.to_path_buf()],
            });
        }
        let config = BertConfig::from_file(&config_path)?;
        let modules = dir.join("modules.json");
        let (mut pooling, mut normalize) = (Pooling::Mean, false);
        if modules.is_file() {
            let list = read_json(&modules)?;
            let list = list
                .as_array()
                .ok_or_else(|| Error::format(&modules, "expected a list of modules"))?;
            for m in list {
                let kind = m["type"].as_str().unwrap_or_default();
                let sub = dir.join(m["path"].as_str().unwrap_or_default());
                match kind.rsplit('.').next().unwrap_or_default() {
                    "Transformer" => {}
                    "Pooling" => pooling = read_pooling(&sub.join("config.json"))?,
                    "Normalize" => normalize = true,
                    other => {
                        return Err(Error::format(
                            &modules,
                            format!(
                                "module `{other}` is not supported (Transformer, Pooling and Normalize are)"
                            ),
                        ));
                    }
                }
            }
        }
        let st_config = dir.join("sentence_bert_config.json");
        let max_length = if st_config.is_file() {
            read_json(&st_config)?["max_seq_length"]
                .as_u64()
                .map_or(config.max_position_embeddings, |n| n as usize)
        } else {
            config.max_position_embeddings
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
            pooling,
            normalize,
            max_length: max_length.min(config_max(dir)?),
        })
    }

    pub fn tokenizer_path(&self) -> PathBuf {
        self.dir.join("tokenizer.json")
    }

    pub fn weights_path(&self) -> PathBuf {
        self.dir.join("model.safetensors")
    }

    /// The folder's tokenizer, truncating at `max_length` (the folder's own when `None`),
    /// checked against the model's embedding table and positions.
    pub fn tokenizer(&self, max_length: Option<usize>) -> Result<TextTokenizer> {
        let max = max_length.unwrap_or(self.max_length);
        let tokenizer = TextTokenizer::from_file(&self.tokenizer_path(), max)?;
        check_tokenizer(&tokenizer, &self.config)?;
        Ok(tokenizer)
    }

    /// The encoder with the folder's weights.
    pub fn encoder(&self, device: &Device) -> Result<TextEncoder> {
        let bert = load_weights(self.config.init(device), &self.weights_path())?;
        Ok(TextEncoder {
            bert,
            pooling: self.pooling,
            normalize: self.normalize,
        })
    }
}

fn config_max(dir: &Path) -> Result<usize> {
    Ok(BertConfig::from_file(&dir.join("config.json"))?.max_position_embeddings)
}

/// `1_Pooling/config.json`: exactly one of CLS, mean and max.
fn read_pooling(path: &Path) -> Result<Pooling> {
    let v = read_json(path)?;
    let on = |k: &str| v[k].as_bool().unwrap_or(false);
    if on("pooling_mode_mean_sqrt_len_tokens")
        || on("pooling_mode_weightedmean_tokens")
        || on("pooling_mode_lasttoken")
    {
        return Err(Error::format(
            path,
            "only mean, CLS and max pooling are supported",
        ));
    }
    match (
        on("pooling_mode_mean_tokens"),
        on("pooling_mode_cls_token"),
        on("pooling_mode_max_tokens"),
    ) {
        (true, false, false) => Ok(Pooling::Mean),
        (false, true, false) => Ok(Pooling::Cls),
        (false, false, true) => Ok(Pooling::Max),
        _ => Err(Error::format(
            path,
            "exactly one of pooling_mode_mean_tokens, pooling_mode_cls_token and pooling_mode_max_tokens must be true",
        )),
    }
}

/// A tokenizer fits a model when its ids index the embedding table and its sequences fit the
/// positions.
pub fn check_tokenizer(tokenizer: &TextTokenizer, config: &BertConfig) -> Result<()> {
    if tokenizer.vocab_size() > config.vocab_size {
        return Err(Error::format(
            &tokenizer.path,
            format!(
                "its vocabulary has {} tokens, and the model's embedding table {}: not this model's tokenizer",
                tokenizer.vocab_size(),
                config.vocab_size
            ),
        ));
    }
    if tokenizer.max_length > config.max_position_embeddings {
        return Err(Error::config(
            "max_length",
            format!(
                "{} tokens exceed the model's {} positions",
                tokenizer.max_length, config.max_position_embeddings
            ),
        ));
    }
    Ok(())
}

/// Sentence embeddings of `texts` (inference), `batch` at a time. Texts are sorted by length
/// first so that a batch pads little, and the rows come back in the order of `texts`.
pub fn encode_sentences(
    encoder: &TextEncoder,
    tokenizer: &TextTokenizer,
    texts: &[&str],
    batch: usize,
    device: &Device,
) -> Result<Features> {
    let dim = encoder.bert.hidden_size();
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(texts[i].len()));
    let mut data = vec![0f32; texts.len() * dim];
    let mut progress = crate::progress::Task::new("embedding", texts.len(), "texts");
    for chunk in order.chunks(batch.max(1)) {
        let part: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
        let tokens = Tokens::new(&tokenizer.encode(&part)?, device);
        let rows = crate::tensor_util::to_vec(encoder.forward(&tokens));
        for (k, &i) in chunk.iter().enumerate() {
            data[i * dim..(i + 1) * dim].copy_from_slice(&rows[k * dim..(k + 1) * dim]);
        }
        progress.advance(chunk.len());
    }
    Ok(Features {
        data,
        rows: texts.len(),
        dim,
    })
}

/// Write a text encoder as a sentence-transformers folder: `model.safetensors` under Hugging
/// Face's BERT names (Linear weights back to `[out, in]`), `config.json`, `tokenizer.json`,
/// `modules.json` (with a Normalize module where the encoder normalises),
/// `1_Pooling/config.json` and `sentence_bert_config.json`. [`SentenceModelDir::open`] and
/// sentence-transformers read it.
pub fn write_folder(
    encoder: &TextEncoder,
    meta: &TextEncoderMeta,
    tokenizer: &TextTokenizer,
    dir: &Path,
) -> Result<()> {
    use crate::checkpoint::{HostTensor, module_tensors, write_atomic, write_safetensors};
    use std::collections::{BTreeMap, HashMap};
    std::fs::create_dir_all(dir.join("1_Pooling")).map_err(|e| Error::io(dir, e))?;
    let linear = [
        "query",
        "key",
        "value",
        "attention_output",
        "intermediate",
        "output",
    ];
    let mut tensors = BTreeMap::new();
    for (name, t) in module_tensors(&encoder.bert) {
        let parts: Vec<&str> = name.split('.').collect();
        let t = match parts.as_slice() {
            ["layers", _, field, "weight"] if linear.contains(field) => {
                let (i, o) = (t.shape[0], t.shape[1]);
                let data = (0..o * i).map(|k| t.data[(k % i) * o + k / i]).collect();
                HostTensor {
                    shape: vec![o, i],
                    data,
                }
            }
            _ => t,
        };
        tensors.insert(super::bert::hf_name(&name), t);
    }
    write_safetensors(&dir.join("model.safetensors"), &tensors, HashMap::new())?;
    let mut config = serde_json::to_value(&meta.config).expect("serialisable");
    config["architectures"] = serde_json::json!(["BertModel"]);
    config["model_type"] = "bert".into();
    config["pad_token_id"] = 0.into();
    let json = |v: &serde_json::Value| serde_json::to_string_pretty(v).expect("serialisable");
    write_atomic(&dir.join("config.json"), json(&config).as_bytes())?;
    write_atomic(&dir.join("tokenizer.json"), tokenizer.json().as_bytes())?;
    let mut modules = vec![
        serde_json::json!({"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}),
        serde_json::json!({"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}),
    ];
    if meta.normalize {
        modules.push(serde_json::json!({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}));
        std::fs::create_dir_all(dir.join("2_Normalize")).map_err(|e| Error::io(dir, e))?;
    }
    write_atomic(&dir.join("modules.json"), json(&modules.into()).as_bytes())?;
    let pooling = serde_json::json!({
        "word_embedding_dimension": meta.config.hidden_size,
        "pooling_mode_cls_token": meta.pooling == Pooling::Cls,
        "pooling_mode_mean_tokens": meta.pooling == Pooling::Mean,
        "pooling_mode_max_tokens": meta.pooling == Pooling::Max,
        "pooling_mode_mean_sqrt_len_tokens": false,
    });
    write_atomic(
        &dir.join("1_Pooling/config.json"),
        json(&pooling).as_bytes(),
    )?;
    let st = serde_json::json!({"max_seq_length": meta.max_length, "do_lower_case": false});
    write_atomic(&dir.join("sentence_bert_config.json"), json(&st).as_bytes())
}
