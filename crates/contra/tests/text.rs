//! Text: contra's BERT against sentence-transformers (fixtures written by
//! tools/reference/text_fixtures.py). A tiny randomly initialised BERT runs on every machine;
//! all-MiniLM-L6-v2 runs where `.ci/run` fetched it into $CONTRA_DATA.

#[path = "support/threads.rs"]
mod threads;

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
            println!("tiny BERT {key} at batch {batch}: largest difference {d:e}");
            assert!(d < 1e-5, "{key} at batch {batch}: {d}");
        }
    }
    let ours = encode_sentences(&loaded, &tokenizer, &texts, 8, &device).unwrap();
    let d = max_diff(&ours, &rows(&f["normalized_mean"]));
    println!("tiny BERT normalised: largest difference {d:e}");
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
    println!("all-MiniLM-L6-v2: largest difference {d:e}");
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

/// The error of loading the tiny BERT's weights with its config.json edited (`from` -> `to`).
fn load_error(name: &str, from: &str, to: &str) -> String {
    let d = tiny_copy(name);
    let cfg = std::fs::read_to_string(d.join("config.json")).unwrap();
    assert!(cfg.contains(from));
    std::fs::write(d.join("config.json"), cfg.replace(from, to)).unwrap();
    SentenceModelDir::open(&d)
        .unwrap()
        .encoder(&cpu())
        .err()
        .unwrap()
        .to_string()
}

/// Weights of another architecture: the error names the file and the tensors.
#[test]
fn weights_of_another_model_are_refused_by_name() {
    // Another size: every tensor misshapen.
    let e = load_error(
        "other-size",
        "\"intermediate_size\": 64",
        "\"intermediate_size\": 128",
    );
    assert!(
        e.contains("model.safetensors") && e.contains("intermediate"),
        "{e}"
    );
    // Fewer layers in the config than in the file: unexpected tensors, named.
    let layers = "\"num_hidden_layers\": 2";
    let e = load_error("fewer-layers", layers, "\"num_hidden_layers\": 1");
    assert!(e.contains("encoder.layer.1."), "{e}");
    // More layers than the file: missing tensors, named.
    let e = load_error("more-layers", layers, "\"num_hidden_layers\": 3");
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
        .encoder(&cpu())
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

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn close(ours: &[f32], theirs: &[f32], tol: f32, what: &str) {
    assert_eq!(ours.len(), theirs.len(), "{what}");
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        assert!((a - b).abs() <= tol, "{what}[{i}]: {a} vs {b}");
    }
}

/// MultipleNegativesRankingLoss (plain, with hard negatives, symmetric): loss and gradients
/// as PyTorch computes sentence-transformers' formula.
#[test]
fn mnrl_matches_the_reference_loss_and_gradients() {
    use contra::losses::MnrlLoss;
    use contra::tensor_util::{tensor2, to_vec};
    let f = fixture("tiny_bert.json")["mnrl"].clone();
    let (n, d) = (
        f["n"].as_u64().unwrap() as usize,
        f["d"].as_u64().unwrap() as usize,
    );
    let ad = cpu().autodiff();
    for case in f["cases"].as_array().unwrap() {
        let leaf = |k: &str| tensor2(floats(&f[k]), [n, d], &ad).require_grad();
        let (a, p, neg) = (leaf("anchor"), leaf("positive"), leaf("negative"));
        let hard = case["hard_negatives"].as_bool().unwrap();
        let loss = MnrlLoss::new(20.0, case["symmetric"].as_bool().unwrap()).forward(
            a.clone(),
            p.clone(),
            hard.then(|| neg.clone()),
        );
        let value: f32 = loss.clone().into_scalar();
        let what = format!("{case:?}");
        assert!(
            (value - case["loss"].as_f64().unwrap() as f32).abs() < 1e-5,
            "{what}"
        );
        let grads = loss.backward();
        close(
            &to_vec(a.grad(&grads).unwrap()),
            &floats(&case["grad_anchor"]),
            1e-5,
            "anchor",
        );
        close(
            &to_vec(p.grad(&grads).unwrap()),
            &floats(&case["grad_positive"]),
            1e-5,
            "positive",
        );
        if hard {
            close(
                &to_vec(neg.grad(&grads).unwrap()),
                &floats(&case["grad_negative"]),
                1e-5,
                "negative",
            );
        }
    }
}

fn tokens(
    dir: &SentenceModelDir,
    texts: &[String],
    device: &burn::prelude::Device,
) -> contra::encoders::bert::Tokens {
    let t: Vec<&str> = texts.iter().map(String::as_str).collect();
    contra::encoders::bert::Tokens::new(&dir.tokenizer(None).unwrap().encode(&t).unwrap(), device)
}

/// The method's loss on the tiny model equals sentence-transformers' MNRL on the same pairs
/// (evaluation mode: no dropout).
#[test]
fn the_mnrl_method_equals_sentence_transformers_loss() {
    use contra::methods::Views;
    use contra::methods::mnrl::MnrlConfig;
    let f = fixture("tiny_bert.json")["mnrl_model"].clone();
    let dir = SentenceModelDir::open(&fixtures().join("tiny-bert")).unwrap();
    let device = cpu();
    let model = MnrlConfig::default().init(dir.encoder(&device).unwrap());
    let views = Views::new(
        vec![
            tokens(&dir, &strs(&f["anchors"]), &device),
            tokens(&dir, &strs(&f["positives"]), &device),
        ],
        None,
    );
    // Evaluation mode: no row keys, no dropout.
    let embedded: Vec<_> = views
        .views
        .iter()
        .map(|t| model.encoder.embed(t, None))
        .collect();
    let ours: f32 = model
        .loss
        .forward(embedded[0].clone(), embedded[1].clone(), None)
        .into_scalar();
    let theirs = f["loss"].as_f64().unwrap() as f32;
    assert!((ours - theirs).abs() < 1e-5, "{ours} vs {theirs}");
}

/// Every parameter's gradient, by path.
fn gradients_by_path<M: burn::module::Module>(
    model: &M,
    grads: &burn::optim::GradientsParams,
) -> std::collections::BTreeMap<String, Vec<f32>> {
    use burn::module::{ModuleVisitor, Param};
    use burn::prelude::Tensor;
    struct Collect<'a> {
        grads: &'a burn::optim::GradientsParams,
        path: Vec<String>,
        out: std::collections::BTreeMap<String, Vec<f32>>,
    }
    impl ModuleVisitor for Collect<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                self.out
                    .insert(self.path.join("."), contra::tensor_util::to_vec(g));
            }
        }
    }
    let mut c = Collect {
        grads,
        path: vec![],
        out: Default::default(),
    };
    model.visit(&mut c);
    c.out
}

/// The tiny BERT and `views` views of 11 fixture sentences each (anchors, positives, hard
/// negatives), on the autodiff device.
fn tiny_pairs(
    views: usize,
) -> (
    SentenceModelDir,
    contra::methods::Views<contra::encoders::bert::Tokens>,
    burn::prelude::Device,
) {
    let f = fixture("tiny_bert.json");
    let texts = strs(&f["sentences"]);
    let dir = SentenceModelDir::open(&fixtures().join("tiny-bert")).unwrap();
    let ad = cpu().autodiff();
    let views = contra::methods::Views::new(
        (0..views)
            .map(|v| tokens(&dir, &texts[11 * v..11 * (v + 1)], &ad))
            .collect(),
        None,
    );
    (dir, views, ad)
}

/// MNRL on the tiny BERT, with GradCache mini-batches of `mini_batch` (0: off).
fn tiny_mnrl(
    dir: &SentenceModelDir,
    mini_batch: usize,
    ad: &burn::prelude::Device,
) -> contra::methods::mnrl::TextModel {
    contra::methods::mnrl::MnrlConfig {
        mini_batch,
        ..Default::default()
    }
    .init(dir.encoder(ad).unwrap())
}

/// GradCache: the parameters' gradients equal the plain loss's at the same batch with the
/// same dropout masks (they follow the rows' keys), with hard negatives and uneven
/// mini-batches; the loss's value too. Without the masks' replay they would not.
#[test]
fn gradcache_gradients_equal_the_plain_loss() {
    use contra::methods::{Method, Views};
    let (dir, views, ad) = tiny_pairs(3);
    let model = |mini_batch| tiny_mnrl(&dir, mini_batch, &ad);
    let plain = model(0);
    let (plain_loss, plain_grads) = plain.gradients(&views);
    let plain_grads = gradients_by_path(&plain, &plain_grads);
    assert!(plain_grads.len() > 30, "{} parameters", plain_grads.len());
    for mini_batch in [3, 4] {
        let cached = model(mini_batch);
        let (loss, grads) = cached.gradients(&views);
        assert!((loss - plain_loss).abs() < 1e-6, "{loss} vs {plain_loss}");
        let grads = gradients_by_path(&cached, &grads);
        assert_eq!(
            grads.keys().collect::<Vec<_>>(),
            plain_grads.keys().collect::<Vec<_>>()
        );
        let mut worst = 0f32;
        let mut largest = 0f32;
        for (k, g) in &grads {
            for (a, b) in g.iter().zip(&plain_grads[k]) {
                worst = worst.max((a - b).abs());
                largest = largest.max(b.abs());
            }
        }
        // Mini-batches sum in another order: f32 rounding, relative to the largest gradient
        // (6.9 here; 1.3e-6 and 1.5e-6 of it measured).
        assert!(
            worst < 1e-5 * largest.max(1.0),
            "mini-batch {mini_batch}: largest difference {worst} (largest gradient {largest})"
        );
    }
    // Dropout is on: other masks (another epoch's) give another gradient.
    let mut other = Views::new(views.views.clone(), None);
    other.keys = views
        .keys
        .iter()
        .map(|k| contra::rng::RowKeys {
            epoch: 1,
            ..k.clone()
        })
        .collect();
    let (other_loss, _) = plain.gradients(&other);
    assert!((other_loss - plain_loss).abs() > 1e-4);
}

/// all-MiniLM-L6-v2's MNRL loss and gradients, dropout on, have the same bits with 1 and 3
/// compute threads: no matrix product, attention, GELU or LayerNorm splits a sum by thread.
#[test]
fn minilm_gradients_do_not_depend_on_the_thread_count() {
    use contra::methods::{Method, Views};
    let Some(path) = minilm_dir() else {
        return;
    };
    let texts = strs(&fixture("tiny_bert.json")["sentences"]);
    let dir = SentenceModelDir::open(&path).unwrap();
    let ad = cpu().autodiff();
    let views = Views::new(
        (0..2)
            .map(|v| tokens(&dir, &texts[11 * v..11 * (v + 1)], &ad))
            .collect(),
        None,
    );
    let model = tiny_mnrl(&dir, 0, &ad);
    let run = |threads| {
        threads::with_threads(threads, || {
            let (loss, grads) = model.gradients(&views);
            (loss.to_bits(), gradients_by_path(&model, &grads))
        })
    };
    let one = run(1);
    assert!(one.1.len() > 90, "{} parameters", one.1.len());
    let three = run(3);
    assert_eq!(one.0, three.0, "the loss");
    for (k, g) in &one.1 {
        assert!(three.1[k] == *g, "{k} depends on the thread count");
    }
}

/// Pairs, triplets and labelled sentences from JSONL, CSV, TSV and text files, columns found
/// by name; a test file's labels follow the training file's classes.
#[test]
fn text_files_read_in_every_layout() {
    use contra::data::sentences::{TextColumns, TextSpec, read_text_file};
    let d = tmp("readers");
    let jsonl = d.join("pairs.jsonl");
    std::fs::write(
        &jsonl,
        "{\"anchor\": \"a dog\", \"positive\": \"an animal\", \"negative\": \"a car\"}\n\n{\"anchor\": \"Größe\", \"positive\": \"東京\", \"negative\": \"\"}\n",
    )
    .unwrap();
    let t = read_text_file(&jsonl, &TextColumns::default(), &mut vec![]).unwrap();
    assert_eq!(t.texts, ["a dog", "Größe"]);
    assert_eq!(t.positives.unwrap(), ["an animal", "東京"]);
    assert_eq!(t.negatives.unwrap(), ["a car", ""]);
    assert!(t.labels.is_none());
    // CSV with quoting; labels as classes in sorted order.
    let csv = d.join("train.csv");
    std::fs::write(
        &csv,
        "text,label\n\"hello, world\",b\nplain,a\n\"say \"\"hi\"\"\",b\n",
    )
    .unwrap();
    let tsv = d.join("test.tsv");
    std::fs::write(&tsv, "text\tlabel\nx \"quoted\"\ta\n").unwrap();
    let spec = TextSpec {
        path: csv.clone(),
        test_path: Some(tsv.clone()),
        ..Default::default()
    };
    let s = spec.load().unwrap();
    assert_eq!(s.train.texts, ["hello, world", "plain", "say \"hi\""]);
    assert_eq!(s.train.labels.as_deref().unwrap(), [1, 0, 1]);
    assert_eq!(s.train.class_names, ["a", "b"]);
    assert_eq!(s.test.texts, ["x \"quoted\""]);
    assert_eq!(s.test.labels.as_deref().unwrap(), [0]);
    // Named columns.
    let pairs = d.join("qa.tsv");
    std::fs::write(&pairs, "q\tanswer\nwhat\tthat\n").unwrap();
    let cols = TextColumns {
        text: Some("q".into()),
        positive: Some("answer".into()),
        ..Default::default()
    };
    let t = read_text_file(&pairs, &cols, &mut vec![]).unwrap();
    assert_eq!(
        (t.texts[0].as_str(), t.positives.unwrap()[0].as_str()),
        ("what", "that")
    );
    // One sentence a line; blank lines skipped, CRLF handled.
    let txt = d.join("s.txt");
    std::fs::write(&txt, "first line\r\n\nsecond\n").unwrap();
    let t = read_text_file(&txt, &TextColumns::default(), &mut vec![]).unwrap();
    assert_eq!(t.texts, ["first line", "second"]);
}

/// Bad text files: errors name the file and the line.
#[test]
fn bad_text_files_are_named_with_their_line() {
    use contra::data::sentences::{TextColumns, TextSpec, read_text_file};
    let d = tmp("bad-readers");
    let err = |name: &str, bytes: &[u8]| {
        let p = d.join(name);
        std::fs::write(&p, bytes).unwrap();
        read_text_file(&p, &TextColumns::default(), &mut vec![])
            .err()
            .unwrap()
            .to_string()
    };
    let e = err("latin1.txt", b"fine\ncaf\xe9\n");
    assert!(
        e.contains("latin1.txt") && e.contains("line 2") && e.contains("UTF-8"),
        "{e}"
    );
    let e = err("latin1.csv", b"text\nok\ncaf\xe9\n");
    assert!(
        e.contains("latin1.csv") && e.contains("line 3") && e.contains("UTF-8"),
        "{e}"
    );
    let e = err(
        "latin1.jsonl",
        b"{\"text\": \"ok\"}\n{\"text\": \"caf\xe9\"}\n",
    );
    assert!(e.contains("line 2") && e.contains("UTF-8"), "{e}");
    let e = err("empty.txt", b"");
    assert!(e.contains("empty.txt") && e.contains("empty"), "{e}");
    let e = err("blank.jsonl", b"\n\n");
    assert!(e.contains("empty"), "{e}");
    let e = err("nocol.csv", b"foo,bar\n1,2\n");
    assert!(
        e.contains("nocol.csv") && e.contains("no text column") && e.contains("foo, bar"),
        "{e}"
    );
    let e = err("broken.jsonl", b"{\"text\": \"a\"}\n{\"text\": \n");
    assert!(e.contains("line 2") && e.contains("not JSON"), "{e}");
    let e = err(
        "missing.jsonl",
        b"{\"text\": \"a\", \"positive\": \"b\"}\n{\"text\": \"c\"}\n",
    );
    assert!(e.contains("line 2") && e.contains("positive"), "{e}");
    let e = err("ragged.csv", b"text,label\na,1\nb\n");
    assert!(e.contains("ragged.csv") && e.contains("line 3"), "{e}");
    let e = err("data.xml", b"<x/>");
    assert!(e.contains(".xml"), "{e}");
    // A test label the training file does not have.
    std::fs::write(d.join("tr.csv"), "text,label\na,x\n").unwrap();
    std::fs::write(d.join("te.csv"), "text,label\nb,x\nc,y\n").unwrap();
    let spec = TextSpec {
        path: d.join("tr.csv"),
        test_path: Some(d.join("te.csv")),
        ..Default::default()
    };
    let e = spec.load().err().unwrap().to_string();
    assert!(
        e.contains("te.csv") && e.contains("line 3") && e.contains("`y`"),
        "{e}"
    );
}

/// WordNet's noun synsets (Debian's wordnet-base, as `.ci/run` installs it): every synset
/// read, 26 lexicographer files, a seeded 80/20 split, the pool of held-out synsets.
#[test]
fn wordnet_nouns_split_into_training_synsets_and_a_held_out_pool() {
    use contra::data::wordnet::{NOUN_FILES, WordnetSpec, read_nouns};
    let path = Path::new("/usr/share/wordnet/data.noun");
    if !path.is_file() {
        assert!(
            std::env::var_os("CONTRA_REQUIRE_DATA").is_none(),
            "{} not found (apt-get install wordnet-base)",
            path.display()
        );
        eprintln!("skipping: {} not found", path.display());
        return;
    }
    let all = read_nouns(path).unwrap();
    assert_eq!(all.len(), 82115);
    let dog = all.iter().find(|s| s.offset == 2084071).unwrap();
    assert_eq!(dog.names[..2], ["dog", "domestic dog"]);
    assert_eq!(NOUN_FILES[dog.lexname as usize], "noun.animal");
    assert!(!dog.gloss.contains('"'));
    let spec = WordnetSpec {
        pool: 0,
        ..Default::default()
    };
    let s = spec.load().unwrap();
    let (train, held) = (s.train.texts.len(), s.test.texts.len());
    assert_eq!(train + held, 82115);
    assert!(
        (held as f64 / 82115.0 - 0.2).abs() < 0.01,
        "{held} held out"
    );
    assert_eq!(s.train.class_names.len(), 26);
    // The pool is the start of the held-out list; another seed splits otherwise.
    let pooled = WordnetSpec::default().load().unwrap();
    assert_eq!(pooled.test.texts.len(), 1000);
    assert_eq!(pooled.test.texts[..], s.test.texts[..1000]);
    let other = WordnetSpec {
        split_seed: 1,
        ..Default::default()
    }
    .load()
    .unwrap();
    assert_ne!(other.test.texts, pooled.test.texts);
}

/// The gradients of MNRL on the tiny model (no dropout) equal PyTorch's, parameter by
/// parameter: embeddings, LayerNorm, attention, feed-forward (Linear weights transposed).
#[test]
fn bert_gradients_equal_pytorchs() {
    use contra::losses::MnrlLoss;
    let f = fixture("tiny_bert.json")["mnrl_model"].clone();
    let dir = SentenceModelDir::open(&fixtures().join("tiny-bert")).unwrap();
    let ad = cpu().autodiff();
    let encoder = dir.encoder(&ad).unwrap();
    let a = tokens(&dir, &strs(&f["anchors"]), &ad);
    let p = tokens(&dir, &strs(&f["positives"]), &ad);
    let loss =
        MnrlLoss::new(20.0, false).forward(encoder.embed(&a, None), encoder.embed(&p, None), None);
    let value: f32 = loss.clone().into_scalar();
    assert!((value - f["loss"].as_f64().unwrap() as f32).abs() < 1e-5);
    let grads = burn::optim::GradientsParams::from_grads(loss.backward(), &encoder);
    let ours = gradients_by_path(&encoder, &grads);
    let ours_of = |hf: &str| -> Vec<f32> {
        let path = match hf {
            "embeddings.word_embeddings.weight" => "bert.embeddings.word_embeddings.weight",
            "embeddings.position_embeddings.weight" => "bert.embeddings.position_embeddings.weight",
            "embeddings.LayerNorm.weight" => "bert.embeddings.layer_norm.gamma",
            "encoder.layer.0.attention.self.query.weight" => "bert.layers.0.query.weight",
            "encoder.layer.0.intermediate.dense.bias" => "bert.layers.0.intermediate.bias",
            "encoder.layer.1.output.dense.weight" => "bert.layers.1.output.weight",
            "encoder.layer.1.output.LayerNorm.bias" => "bert.layers.1.output_norm.beta",
            other => panic!("{other}"),
        };
        ours.get(path)
            .unwrap_or_else(|| panic!("no gradient for {path}: {:?}", ours.keys()))
            .clone()
    };
    for (name, theirs) in f["grads"].as_object().unwrap() {
        let theirs = floats(theirs);
        let shape: Vec<usize> = f["shapes"][name]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        let mut ours = ours_of(name);
        // burn's Linear keeps [in, out]; PyTorch [out, in].
        if name.ends_with("dense.weight") || name.ends_with("query.weight") {
            let (o, i) = (shape[0], shape[1]);
            ours = (0..o * i).map(|k| ours[(k % i) * o + k / i]).collect();
        }
        let scale = theirs.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
        for (k, (x, y)) in ours.iter().zip(&theirs).enumerate() {
            assert!(
                (x - y).abs() <= 1e-4 * scale + 1e-7,
                "{name}[{k}]: {x} vs {y} (largest {scale})"
            );
        }
    }
}

/// Across processes (ranks that are threads here; MPI ranks compute the same), in-batch
/// negatives come from the global batch: each rank's gradient on its share of the pairs,
/// summed, equals one process's on the whole batch, with GradCache too and with dropout on
/// (the masks follow the rows' keys). Two and three ranks, uneven shares.
#[test]
fn mnrl_across_ranks_has_the_single_process_gradient() {
    use contra::dist;
    use contra::methods::{Method, Views};
    let (dir, views, ad) = tiny_pairs(2);
    let model = |mini_batch| tiny_mnrl(&dir, mini_batch, &ad);
    let single = model(0);
    let (single_loss, grads) = single.gradients(&views);
    let single_grads = gradients_by_path(&single, &grads);
    for (ranks, mini_batch) in [(2, 0), (3, 0), (2, 3)] {
        let results: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = dist::local_group(ranks)
                .into_iter()
                .enumerate()
                .map(|(rank, group)| {
                    let (views, model, ad) = (&views, &model, &ad);
                    s.spawn(move || {
                        dist::within(group, || {
                            let share = dist::share(views.items(), rank, ranks);
                            let mut part = Views::new(
                                views
                                    .views
                                    .iter()
                                    .map(|t| t.rows(share.start, share.len()).trimmed())
                                    .collect(),
                                None,
                            );
                            part.keys = views
                                .keys
                                .iter()
                                .map(|k| k.slice(share.start, share.len()))
                                .collect();
                            let m = model(mini_batch);
                            let (loss, grads) = m.gradients(&part);
                            let group = dist::group().unwrap();
                            let grads = contra::train::data_parallel::all_reduce_gradients(
                                &m,
                                grads,
                                group.as_ref(),
                            );
                            let _ = ad;
                            (loss, gradients_by_path(&m, &grads))
                        })
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (rank, (loss, grads)) in results.iter().enumerate() {
            assert!((loss - single_loss).abs() < 1e-5, "{loss} vs {single_loss}");
            assert_eq!(grads.len(), single_grads.len());
            let (mut worst, mut scale) = (0f32, 0f32);
            for (k, g) in grads {
                for (a, b) in g.iter().zip(&single_grads[k]) {
                    worst = worst.max((a - b).abs());
                    scale = scale.max(b.abs());
                }
            }
            assert!(
                worst / scale < 1e-5,
                "{ranks} ranks (mini-batch {mini_batch}), rank {rank}: relative difference {:.2e}",
                worst / scale
            );
        }
    }
}
