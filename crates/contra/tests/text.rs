//! Text: contra's BERT against sentence-transformers (fixtures written by
//! tools/reference/text_fixtures.py). A tiny randomly initialised BERT runs on every machine;
//! all-MiniLM-L6-v2 runs where `.ci/run` fetched it into $CONTRA_DATA.

use contra::encoders::bert::{Pooling, TextEncoder};
use contra::encoders::sentence::{SentenceModelDir, encode_sentences};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/text")
}

fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(fixtures().join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn cpu() -> burn::prelude::Device {
    contra::device::parse("cpu").unwrap()
}

fn rows(v: &Value) -> Vec<Vec<f32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect()
}

fn max_diff(ours: &contra::features::Features, theirs: &[Vec<f32>]) -> f32 {
    assert_eq!(ours.rows, theirs.len());
    let mut worst = 0f32;
    for (i, t) in theirs.iter().enumerate() {
        assert_eq!(ours.dim, t.len());
        for (a, b) in ours.row(i).iter().zip(t) {
            worst = worst.max((a - b).abs());
        }
    }
    worst
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// The tiny BERT's sentence embeddings equal sentence-transformers' under every pooling, and
/// with the folder's Normalize module (weights through burn's store: keys remapped, Linear
/// transposed, LayerNorm renamed, pooler and position ids skipped).
#[test]
fn a_tiny_bert_embeds_as_sentence_transformers_does() {
    let f = fixture("tiny_bert.json");
    let dir = SentenceModelDir::open(&fixtures().join("tiny-bert")).unwrap();
    assert_eq!(
        (dir.pooling, dir.normalize, dir.max_length),
        (Pooling::Mean, true, 48)
    );
    let device = cpu();
    let tokenizer = dir.tokenizer(None).unwrap();
    let texts = strs(&f["sentences"]);
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let loaded = dir.encoder(&device).unwrap();
    for (pooling, key) in [
        (Pooling::Mean, "pooled_mean"),
        (Pooling::Cls, "pooled_cls"),
        (Pooling::Max, "pooled_max"),
    ] {
        let encoder = TextEncoder {
            bert: loaded.bert.clone(),
            pooling,
            normalize: false,
        };
        // Batches of 5 and 40: padding does not change a sentence's embedding.
        for batch in [5, 40] {
            let ours = encode_sentences(&encoder, &tokenizer, &texts, batch, &device).unwrap();
            let d = max_diff(&ours, &rows(&f[key]));
            assert!(d < 1e-5, "{key} at batch {batch}: {d}");
        }
    }
    let ours = encode_sentences(&loaded, &tokenizer, &texts, 8, &device).unwrap();
    let d = max_diff(&ours, &rows(&f["normalized_mean"]));
    assert!(d < 1e-6, "normalised: {d}");
}

/// all-MiniLM-L6-v2 as shipped equals sentence-transformers on 58 varied sentences (past the
/// maximum length, empty, non-ASCII, punctuation only) within 1e-4.
#[test]
fn minilm_embeds_as_sentence_transformers_does() {
    let Some(dir) = minilm_dir() else { return };
    let f = fixture("minilm.json");
    let dir = SentenceModelDir::open(&dir).unwrap();
    assert_eq!(
        (dir.pooling, dir.normalize, dir.max_length),
        (Pooling::Mean, true, 256)
    );
    let device = cpu();
    let tokenizer = dir.tokenizer(None).unwrap();
    let texts = strs(&f["sentences"]);
    assert!(texts.len() >= 50);
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    // The same token ids (truncated at 256).
    for (text, ids) in texts.iter().zip(f["token_ids"].as_array().unwrap()) {
        let ours = tokenizer.encode(&[text]).unwrap().ids;
        let theirs: Vec<i64> = ids
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_i64().unwrap())
            .collect();
        assert_eq!(ours, theirs, "{text:?}");
    }
    let encoder = dir.encoder(&device).unwrap();
    let ours = encode_sentences(&encoder, &tokenizer, &texts, 16, &device).unwrap();
    let d = max_diff(&ours, &rows(&f["embeddings"]));
    assert!(d < 1e-4, "largest difference {d}");
    let start: Vec<f32> = ours.row(0)[..5]
        .iter()
        .map(|v| (v * 1e4).round() / 1e4)
        .collect();
    assert_eq!(start, [0.0677, 0.0635, 0.0487, 0.0793, 0.0374]);
}

fn minilm_dir() -> Option<PathBuf> {
    let required = std::env::var_os("CONTRA_REQUIRE_DATA").is_some();
    let Some(root) = std::env::var_os("CONTRA_DATA").map(PathBuf::from) else {
        assert!(!required, "CONTRA_DATA is not set");
        eprintln!("skipping: CONTRA_DATA is not set");
        return None;
    };
    let dir = root.join("models/all-MiniLM-L6-v2");
    if !dir.join("model.safetensors").is_file() {
        assert!(!required, "{} not found", dir.display());
        eprintln!("skipping: {} not found", dir.display());
        return None;
    }
    Some(dir)
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("contra-text-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A copy of the tiny BERT's folder, to break.
fn tiny_copy(name: &str) -> PathBuf {
    let d = tmp(name);
    let src = fixtures().join("tiny-bert");
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "modules.json",
        "sentence_bert_config.json",
    ] {
        std::fs::copy(src.join(f), d.join(f)).unwrap();
    }
    std::fs::create_dir_all(d.join("1_Pooling")).unwrap();
    std::fs::copy(
        src.join("1_Pooling/config.json"),
        d.join("1_Pooling/config.json"),
    )
    .unwrap();
    d
}

/// Weights of another architecture: the error names the file and the tensors.
#[test]
fn weights_of_another_model_are_refused_by_name() {
    let device = cpu();
    // Another size: every tensor misshapen.
    let d = tiny_copy("other-size");
    let cfg = std::fs::read_to_string(d.join("config.json")).unwrap();
    std::fs::write(
        d.join("config.json"),
        cfg.replace("\"intermediate_size\": 64", "\"intermediate_size\": 128"),
    )
    .unwrap();
    let e = SentenceModelDir::open(&d)
        .unwrap()
        .encoder(&device)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("model.safetensors") && e.contains("intermediate"),
        "{e}"
    );
    // Fewer layers in the config than in the file: unexpected tensors, named.
    let d = tiny_copy("fewer-layers");
    let cfg = std::fs::read_to_string(d.join("config.json")).unwrap();
    std::fs::write(
        d.join("config.json"),
        cfg.replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1"),
    )
    .unwrap();
    let e = SentenceModelDir::open(&d)
        .unwrap()
        .encoder(&device)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("encoder.layer.1."), "{e}");
    // More layers than the file: missing tensors, named.
    let d = tiny_copy("more-layers");
    std::fs::write(
        d.join("config.json"),
        cfg.replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3"),
    )
    .unwrap();
    let e = SentenceModelDir::open(&d)
        .unwrap()
        .encoder(&device)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("missing") && e.contains("layers.2."), "{e}");
    // Not a BERT at all: a contra image model's weights.
    let d = tiny_copy("image-weights");
    let image_model = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/old-models");
    let some = std::fs::read_dir(&image_model)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .unwrap();
    std::fs::copy(some, d.join("model.safetensors")).unwrap();
    let e = SentenceModelDir::open(&d)
        .unwrap()
        .encoder(&device)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("model.safetensors") && e.contains("missing"),
        "{e}"
    );
}

/// A tokenizer whose ids run past the embedding table is refused, naming the tokenizer.
#[test]
fn a_tokenizer_larger_than_the_embedding_table_is_refused() {
    let d = tiny_copy("vocab");
    let cfg = std::fs::read_to_string(d.join("config.json")).unwrap();
    std::fs::write(
        d.join("config.json"),
        cfg.replace("\"vocab_size\": 200", "\"vocab_size\": 100"),
    )
    .unwrap();
    let e = SentenceModelDir::open(&d)
        .unwrap()
        .tokenizer(None)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("tokenizer.json") && e.contains("200") && e.contains("100"),
        "{e}"
    );
    // A length past the model's positions.
    let dir = SentenceModelDir::open(&fixtures().join("tiny-bert")).unwrap();
    let e = dir.tokenizer(Some(65)).err().unwrap().to_string();
    assert!(e.contains("64 positions"), "{e}");
}
