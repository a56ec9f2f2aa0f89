//! Text through the `contra` binary, on the tiny BERT of contra's fixtures: SimCSE killed and
//! resumed to the uninterrupted result (keyed dropout), pairs with in-batch negatives, the
//! model file embedding a text file on its own, search by a sentence, pair retrieval, and the
//! recipe's checks.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn contra() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_contra"));
    // The tiny model is found by its absolute path, not in a data folder.
    c.env_remove("CONTRA_DATA");
    c
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("contra-cli-text-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn tiny_bert() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../contra/tests/fixtures/text/tiny-bert")
}

fn ok(c: &mut Command) -> String {
    let o = c.output().unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    out
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn step_records(metrics: &Path) -> Vec<u64> {
    std::fs::read_to_string(metrics)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\"loss\""))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?["step"].as_u64())
        .collect()
}

/// Sentences of a few hundred distinct lines.
fn sentences(dir: &Path) -> PathBuf {
    let words = [
        "the", "dog", "runs", "a", "cat", "sleeps", "in", "park", "music", "plays", "rain",
        "falls", "on", "city", "quick", "brown", "fox", "jumps", "over", "lazy",
    ];
    let mut s = String::new();
    for i in 0..400usize {
        let n = 6 + i % 17;
        let line: Vec<&str> = (0..n)
            .map(|j| words[(i * 7 + j * (i % 5 + 1)) % words.len()])
            .collect();
        s.push_str(&format!("{} {i}\n", line.join(" ")));
    }
    let p = dir.join("sentences.txt");
    std::fs::write(&p, s).unwrap();
    p
}

fn simcse_recipe(dir: &Path) -> PathBuf {
    let p = dir.join("simcse.toml");
    std::fs::write(
        &p,
        format!(
            "name = \"simcse-tiny\"\nseed = 5\n[data]\nsource = \"text\"\npath = {:?}\n\
             [encoder]\nkind = \"bert\"\npath = {:?}\n[method]\nkind = \"simcse\"\n\
             [optimizer]\nkind = \"adamw\"\nlr = 1e-3\n[schedule]\nwarmup_epochs = 0.2\n\
             decay = \"linear\"\n[train]\nepochs = 4\nbatch_size = 16\nworkers = 2\n",
            sentences(dir).display().to_string(),
            tiny_bert().display().to_string()
        ),
    )
    .unwrap();
    p
}

/// SimCSE's two views differ only by dropout, whose masks follow the rows: a run killed
/// mid-epoch and resumed ends with the weights of the uninterrupted run.
#[test]
fn killed_simcse_run_resumes_exactly() {
    let dir = tmp("resume");
    let recipe = simcse_recipe(&dir);
    let straight = dir.join("straight");
    ok(contra()
        .args(["pretrain", "-q", "--no-eval", "-r"])
        .arg(&recipe)
        .arg("--out")
        .arg(&straight));
    let killed = dir.join("killed");
    let mut child = contra()
        .args([
            "pretrain",
            "-q",
            "--no-eval",
            "--checkpoint-every",
            "4",
            "-r",
        ])
        .arg(&recipe)
        .arg("--out")
        .arg(&killed)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while step_records(&killed.join("metrics.jsonl")).len() < 30 {
        assert!(start.elapsed() < Duration::from_secs(120), "no progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before the kill"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!killed.join("model.safetensors").exists());
    ok(contra()
        .args(["pretrain", "-q", "--no-eval", "--resume", "-r"])
        .arg(&recipe)
        .arg("--out")
        .arg(&killed));
    let (a, meta_a) =
        contra::checkpoint::read_safetensors(&straight.join("model.safetensors")).unwrap();
    let (b, meta_b) =
        contra::checkpoint::read_safetensors(&killed.join("model.safetensors")).unwrap();
    assert_eq!(a.len(), b.len());
    for (k, t) in &a {
        assert_eq!(Some(t), b.get(k), "tensor {k} differs after resume");
    }
    assert_eq!(
        meta_a.get("contra.tokenizer"),
        meta_b.get("contra.tokenizer")
    );
    assert_eq!(
        step_records(&killed.join("metrics.jsonl")),
        (1..=100).collect::<Vec<u64>>()
    );
}

/// Pairs with in-batch negatives; then the model file alone (the folder it started from
/// gone) embeds a text file, and a sentence searches the index, which prints the texts.
#[test]
fn a_text_model_embeds_and_searches_on_its_own() {
    let dir = tmp("pairs");
    // Copy the tiny model, to delete it after training.
    let model_dir = dir.join("tiny");
    std::fs::create_dir_all(model_dir.join("1_Pooling")).unwrap();
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "modules.json",
        "sentence_bert_config.json",
        "1_Pooling/config.json",
    ] {
        std::fs::copy(tiny_bert().join(f), model_dir.join(f)).unwrap();
    }
    let pairs = dir.join("pairs.jsonl");
    let mut s = String::new();
    for i in 0..64 {
        s.push_str(&format!(
            "{{\"anchor\": \"item {i} is a dog\", \"positive\": \"the dog number {i}\", \"label\": {}}}\n",
            i % 4
        ));
    }
    std::fs::write(&pairs, s).unwrap();
    let recipe = dir.join("mnrl.toml");
    std::fs::write(
        &recipe,
        format!(
            "seed = 1\n[data]\nsource = \"text\"\npath = {:?}\n[encoder]\nkind = \"bert\"\n\
             path = {:?}\n[method]\nkind = \"mnrl\"\nsymmetric = true\n[optimizer]\n\
             kind = \"adamw\"\nlr = 1e-3\n[train]\nepochs = 2\nbatch_size = 8\n",
            pairs.display().to_string(),
            model_dir.display().to_string()
        ),
    )
    .unwrap();
    let run = dir.join("run");
    let out = ok(contra()
        .args(["pretrain", "-r"])
        .arg(&recipe)
        .arg("--out")
        .arg(&run));
    assert!(
        out.contains("TF-IDF") && out.contains("linear probe"),
        "{out}"
    );
    std::fs::remove_dir_all(&model_dir).unwrap();
    let model = run.join("model.safetensors");
    let texts = dir.join("corpus.txt");
    std::fs::write(
        &texts,
        "a dog barks\nthe stock market fell\nmusic in the park\n",
    )
    .unwrap();
    let index = dir.join("index");
    let out = ok(contra()
        .args(["embed", "-m"])
        .arg(&model)
        .arg("--texts")
        .arg(&texts)
        .arg("--out")
        .arg(&index));
    assert!(out.contains("wrote 3 embeddings of dimension 32"), "{out}");
    let out = ok(contra()
        .args([
            "search",
            "--json",
            "-k",
            "3",
            "--text",
            "a dog barks",
            "--index",
        ])
        .arg(index.join("embeddings.safetensors")));
    let hits: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(hits.as_array().unwrap().len(), 3);
    // The query itself is in the corpus: it comes first, at cosine 1.
    assert_eq!(hits[0]["text"], "a dog barks");
    assert!((hits[0]["cosine"].as_f64().unwrap() - 1.0).abs() < 1e-5);
    // Pair retrieval on the training pairs (the test split is the training file).
    let out = ok(contra().args(["eval", "pairs", "--json", "-m"]).arg(&model));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["learned"]["queries"], 64);
    assert_eq!(v["learned"]["candidates"], 64);
    assert!(v["learned"]["recall_at_10"].as_f64().unwrap() > 0.0);
    // An image query against a text index is refused by name.
    let o = contra()
        .args(["search", "--image", "x.png", "--index"])
        .arg(index.join("embeddings.safetensors"))
        .output()
        .unwrap();
    assert!(!o.status.success() && text(&o).1.contains("text embeddings"));
}

/// Text recipes check their parts: an image encoder on text, a text method on images, pairs
/// missing for mnrl, and an empty or non-UTF-8 file.
#[test]
fn text_recipes_are_checked() {
    let dir = tmp("checks");
    let lines = sentences(&dir);
    let recipe = |name: &str, body: String| {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p
    };
    let run = |p: &Path| {
        let o = contra()
            .args(["pretrain", "-q", "--no-eval", "-r"])
            .arg(p)
            .arg("--out")
            .arg(dir.join("out"))
            .output()
            .unwrap();
        assert!(!o.status.success());
        text(&o).1
    };
    let head = format!(
        "[data]\nsource = \"text\"\npath = {:?}\n",
        lines.display().to_string()
    );
    let bert = format!(
        "[encoder]\nkind = \"bert\"\npath = {:?}\n",
        tiny_bert().display().to_string()
    );
    let adamw = "[optimizer]\nkind = \"adamw\"\nlr = 1e-3\n";
    let e = run(&recipe(
        "cnn.toml",
        format!("{head}[encoder]\nkind = \"small_cnn\"\n[method]\nkind = \"simcse\"\n{adamw}"),
    ));
    assert!(e.contains("encoder.kind") && e.contains("bert"), "{e}");
    let e = run(&recipe(
        "simclr.toml",
        format!("{head}{bert}[method]\nkind = \"simclr\"\n{adamw}"),
    ));
    assert!(e.contains("method.kind") && e.contains("simcse"), "{e}");
    let e = run(&recipe(
        "digits.toml",
        format!("{bert}[method]\nkind = \"mnrl\"\n{adamw}"),
    ));
    assert!(e.contains("data.source"), "{e}");
    let e = run(&recipe(
        "nopairs.toml",
        format!(
            "{head}{bert}[method]\nkind = \"mnrl\"\n[optimizer]\nkind = \"adamw\"\nlr = 1e-3\n"
        ),
    ));
    assert!(e.contains("positive column"), "{e}");
    std::fs::write(dir.join("empty.txt"), "").unwrap();
    let e = run(&recipe(
        "empty.toml",
        format!(
            "[data]\nsource = \"text\"\npath = {:?}\n{bert}[method]\nkind = \"simcse\"\n[optimizer]\nkind = \"adamw\"\nlr = 1e-3\n",
            dir.join("empty.txt").display().to_string()
        ),
    ));
    assert!(e.contains("empty.txt") && e.contains("empty"), "{e}");
    std::fs::write(dir.join("latin1.txt"), b"ok\ncaf\xe9\n").unwrap();
    let e = run(&recipe(
        "latin1.toml",
        format!(
            "[data]\nsource = \"text\"\npath = {:?}\n{bert}[method]\nkind = \"simcse\"\n[optimizer]\nkind = \"adamw\"\nlr = 1e-3\n",
            dir.join("latin1.txt").display().to_string()
        ),
    ));
    assert!(
        e.contains("latin1.txt") && e.contains("line 2") && e.contains("UTF-8"),
        "{e}"
    );
}
