//! The `contra` binary end to end: training, kill and resume, evaluation, export, and errors;
//! text on the tiny BERT of contra's fixtures.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn contra() -> Command {
    Command::new(env!("CARGO_BIN_EXE_contra"))
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("contra-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A small, quick recipe on 320 bundled digits.
fn small_recipe(dir: &Path, epochs: u64) -> PathBuf {
    let p = dir.join("small.toml");
    std::fs::write(
        &p,
        format!(
            r#"name = "small"
seed = 3
[data]
source = "digits"
train_limit = 320
[augment]
steps = [
  {{ op = "random_resized_crop", size = 8, scale = [0.4, 1.0] }},
  {{ op = "color_jitter", brightness = 0.4, contrast = 0.4, p = 0.8 }},
  {{ op = "normalize", mean = [0.3], std = [0.37] }},
]
[encoder]
kind = "small_cnn"
widths = [16, 32, 64, 64]
[head]
hidden_dim = 64
output_dim = 32
[optimizer]
kind = "sgd"
lr = 0.1
weight_decay = 5e-4
[schedule]
warmup_epochs = 1
[train]
epochs = {epochs}
batch_size = 32
workers = 2
[eval]
knn_k = 10
labels_per_class = [5]
seeds = 2
probe_l2 = [1e-3, 1e-1]
"#
        ),
    )
    .unwrap();
    p
}

fn final_loss(stdout: &str) -> String {
    stdout
        .split("final loss ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or_else(|| panic!("no final loss in {stdout}"))
        .to_string()
}

fn step_records(metrics: &Path) -> Vec<u64> {
    std::fs::read_to_string(metrics)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\"loss\""))
        // A line being written while the test reads is skipped.
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?["step"].as_u64())
        .collect()
}

#[test]
fn killed_run_resumes_to_the_uninterrupted_result() {
    kill_and_resume("resume", "");
}

/// MoCo's queue and key encoder are part of the checkpoint: a resumed run ends identical too.
#[test]
fn killed_moco_run_resumes_with_its_queue_and_key_encoder() {
    kill_and_resume(
        "resume-moco",
        "[method]\nkind = \"moco\"\nqueue_size = 96\ntemperature = 0.2\nmomentum = 0.99\n",
    );
}

/// So is NNCLR's support set.
#[test]
fn killed_nnclr_run_resumes_with_its_support_set() {
    kill_and_resume(
        "resume-nnclr",
        "[method]\nkind = \"nnclr\"\nqueue_size = 96\ntemperature = 0.2\n",
    );
}

/// Mean-shifted contrast's centre is part of the checkpoint (a resume does not refit it from
/// `train.init`; without the saved centre it would contrast about zero and end elsewhere).
#[test]
fn killed_mean_shifted_run_resumes_about_its_fitted_centre() {
    let dir = tmp("resume-mean-shifted");
    let start = dir.join("start");
    ok(contra()
        .args(["pretrain", "-q", "--no-eval", "-r"])
        .arg(small_recipe(&dir, 1))
        .arg("--out")
        .arg(&start));
    let recipe = small_recipe(&dir, 30);
    let text = std::fs::read_to_string(&recipe).unwrap().replace(
        "batch_size = 32\n",
        &format!(
            "batch_size = 32\ninit = {:?}\n",
            start.join("model.safetensors").display().to_string()
        ),
    );
    std::fs::write(
        &recipe,
        format!("{text}[method]\nkind = \"mean_shifted\"\nangular_weight = 1.0\n"),
    )
    .unwrap();
    kill_and_resume_recipe(&dir, &recipe, 300);
}

/// TS2Vec's encoder has dropout: its masks follow (seed, epoch, item, view), so a resumed
/// run draws the masks the uninterrupted one drew (with burn's process-wide generator it did
/// not: the resumed run ended at another loss).
#[test]
fn killed_ts2vec_run_resumes_with_the_same_dropout_masks() {
    let dir = tmp("resume-ts2vec");
    let streams = dir.join("streams.csv");
    let mut csv = String::from("a,b\n");
    for t in 0..600 {
        let t = t as f64;
        csv.push_str(&format!(
            "{:.4},{:.4}\n",
            (t * 0.21).sin() + 0.1 * (t * 1.7).cos(),
            (t * 0.05).cos()
        ));
    }
    std::fs::write(&streams, csv).unwrap();
    let recipe = dir.join("ts2vec.toml");
    std::fs::write(
        &recipe,
        format!(
            "name = \"resume-ts2vec\"\nseed = 2\n[data]\nsource = \"csv\"\npath = {:?}\n\
             window = 64\nstride = 8\ntrain_fraction = 0.7\n[encoder]\nkind = \"ts2vec\"\n\
             dropout = 0.3\n[method]\nkind = \"ts2vec\"\n[optimizer]\nkind = \"adamw\"\n\
             lr = 0.001\n[schedule]\ndecay = \"constant\"\n[train]\nbatch_size = 8\n\
             steps = 60\nworkers = 2\n",
            streams.display().to_string()
        ),
    )
    .unwrap();
    kill_and_resume_recipe(&dir, &recipe, 60);
}

fn kill_and_resume(name: &str, extra: &str) {
    let dir = tmp(name);
    let recipe = small_recipe(&dir, 30);
    let base = std::fs::read_to_string(&recipe).unwrap();
    std::fs::write(&recipe, format!("{base}{extra}")).unwrap();
    kill_and_resume_recipe(&dir, &recipe, 300);
}

/// Train `recipe` straight, and again killed at step 25 (checkpoints every 4 steps) and
/// resumed: both end at the same loss and weights, and the log has every step once.
fn kill_and_resume_recipe(dir: &Path, recipe: &Path, steps: u64) {
    let straight = dir.join("straight");
    let o = contra()
        .args(["pretrain", "-q", "--no-eval", "-r"])
        .arg(recipe)
        .arg("--out")
        .arg(&straight)
        .output()
        .unwrap();
    let (out_a, err_a) = text(&o);
    assert!(o.status.success(), "{err_a}");

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
        .arg(recipe)
        .arg("--out")
        .arg(&killed)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for step 25 (mid-way through an epoch for these recipes), then SIGKILL.
    let start = Instant::now();
    while step_records(&killed.join("metrics.jsonl")).len() < 25 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "training made no progress"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run finished before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !killed.join("model.safetensors").exists(),
        "killed before the end"
    );
    // A resume with a recipe that trains differently is refused...
    let o = contra()
        .args([
            "pretrain",
            "-q",
            "--no-eval",
            "--resume",
            "--seed",
            "4",
            "-r",
        ])
        .arg(recipe)
        .arg("--out")
        .arg(&killed)
        .output()
        .unwrap();
    assert!(!o.status.success() && text(&o).1.contains("different recipe"));
    // ...one that differs only in how often it writes checkpoints and in threads is accepted.
    let o = contra()
        .args(["pretrain", "-q", "--no-eval", "--resume", "-r"])
        .arg(recipe)
        .arg("--out")
        .arg(&killed)
        .output()
        .unwrap();
    let (out_b, err_b) = text(&o);
    assert!(o.status.success(), "{err_b}");
    assert_eq!(final_loss(&out_a), final_loss(&out_b));
    let (a, _) = contra::checkpoint::read_safetensors(&straight.join("model.safetensors")).unwrap();
    let (b, _) = contra::checkpoint::read_safetensors(&killed.join("model.safetensors")).unwrap();
    assert_eq!(a.len(), b.len());
    for (k, t) in &a {
        assert_eq!(Some(t), b.get(k), "tensor {k} differs after resume");
    }
    // The log has every step exactly once.
    assert_eq!(
        step_records(&killed.join("metrics.jsonl")),
        (1..=steps).collect::<Vec<u64>>()
    );
}

#[test]
fn eval_and_embed_read_a_trained_model() {
    let dir = tmp("eval");
    let recipe = small_recipe(&dir, 2);
    let run = dir.join("run");
    let stdout = ok(contra()
        .args(["pretrain", "-q", "-r"])
        .arg(&recipe)
        .arg("--out")
        .arg(&run));
    assert!(
        stdout.contains("kNN (k=10, t=0.1)") && stdout.contains("raw pixels"),
        "{stdout}"
    );
    let model = run.join("model.safetensors");
    let stdout = ok(contra()
        .args(["eval", "knn", "--labels-per-class", "5", "-m"])
        .arg(&model));
    assert!(stdout.contains("kNN, 5/class labels (2 seeds)"), "{stdout}");
    let stdout = ok(contra()
        .args(["eval", "linear", "--labels-per-class", "0", "-m"])
        .arg(&model));
    assert!(
        stdout.contains("linear probe, all labels") && !stdout.contains("/class labels"),
        "{stdout}"
    );
    let emb = dir.join("emb");
    let o = contra()
        .args(["embed", "--split", "test", "-m"])
        .arg(&model)
        .arg("-o")
        .arg(&emb)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o).1);
    let e = std::fs::read(emb.join("embeddings.npy")).unwrap();
    let header = String::from_utf8_lossy(&e[10..128]).into_owned();
    assert!(header.contains("'shape': (360, 64)"), "{header}");
    let l = std::fs::read(emb.join("labels.npy")).unwrap();
    assert!(String::from_utf8_lossy(&l[10..80]).contains("(360,)"));

    // The safetensors index: search by an item's id finds other items, never the item itself;
    // results are in order of similarity and agree with the exported matrix.
    let index = emb.join("embeddings.safetensors");
    let ix = contra::embed::read_index(&index).unwrap();
    assert_eq!(
        (ix.embeddings.rows, ix.embeddings.dim, ix.ids.len()),
        (360, 64, 360)
    );
    let stdout = ok(contra()
        .args(["search", "--id", "7", "-k", "4", "--index"])
        .arg(&index));
    let rows: Vec<Vec<String>> = stdout
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect();
    assert_eq!(rows.len(), 4, "{stdout}");
    let sims: Vec<f64> = rows.iter().map(|r| r[3].parse().unwrap()).collect();
    assert!(sims.windows(2).all(|w| w[0] >= w[1]), "{stdout}");
    assert!(rows.iter().all(|r| r[1] != "7"));
    let unit = |i: usize| {
        let r = ix.embeddings.row(i);
        let n = r.iter().map(|v| v * v).sum::<f32>().sqrt();
        r.iter().map(|v| (v / n) as f64).collect::<Vec<f64>>()
    };
    let best: usize = rows[0][1].parse().unwrap();
    let cos: f64 = unit(7).iter().zip(unit(best)).map(|(a, b)| a * b).sum();
    assert!((cos - sims[0]).abs() < 1e-3, "{cos} vs {}", sims[0]);
    // An image file as the query: a test digit written as PNG finds itself first.
    let mut raster = contra::plot::Raster::new(8, 8);
    let splits = contra::data::digits::splits();
    for (p, &v) in raster
        .pixels
        .chunks_mut(3)
        .zip(splits.test.image(best).iter())
    {
        p.fill(v);
    }
    let png = dir.join("query.png");
    std::fs::write(&png, raster.to_png().unwrap()).unwrap();
    let stdout = ok(contra()
        .args(["search", "-k", "1", "--image"])
        .arg(&png)
        .arg("--index")
        .arg(&index));
    let top: Vec<&str> = stdout.lines().nth(2).unwrap().split_whitespace().collect();
    assert_eq!(top[1], best.to_string(), "{stdout}");
    assert!(top[3].parse::<f64>().unwrap() > 0.999, "{stdout}");
    let o = contra()
        .args(["search", "--id", "9999", "--index"])
        .arg(&index)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).1.contains("9999 is not in"), "{}", text(&o).1);

    // The few-label table: two budgets, two seeds, every contender, files written.
    let few = dir.join("few");
    let stdout = ok(contra()
        .args(["eval", "fewshot", "--labels", "2,10%", "--seeds", "2"])
        .args(["--finetune-steps", "5", "--finetune-batch", "8", "-m"])
        .arg(&model)
        .arg("-o")
        .arg(&few));
    assert!(
        stdout.contains("from scratch") && stdout.contains("10%") && stdout.contains("2/class"),
        "{stdout}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(few.join("fewshot.json")).unwrap()).unwrap();
    let cells = json["cells"].as_array().unwrap();
    // Per budget: kNN and probe on three representations, fine-tuning and from scratch.
    assert_eq!(cells.len(), 2 * (3 + 3 + 2));
    for c in cells {
        let runs = c["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 2);
        for r in runs {
            let (acc, f1) = (r[1].as_f64().unwrap(), r[2].as_f64().unwrap());
            assert!(
                (0.0..=1.0).contains(&acc) && (0.0..=1.0).contains(&f1),
                "{c}"
            );
        }
    }
    // 2 per class of 10 classes; 10% of the 320 training digits, per class.
    assert_eq!(json["labelled"][0][1], 20);
    assert!((30..=34).contains(&json["labelled"][1][1].as_u64().unwrap()));
    let md = std::fs::read_to_string(few.join("fewshot.md")).unwrap();
    assert!(
        md.contains("| labels | protocol | pretrained | random init | raw pixels | from scratch |"),
        "{md}"
    );
    let o = contra()
        .args(["eval", "fewshot", "--labels", "0", "-m"])
        .arg(&model)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        text(&o).1.contains("`0`; expected labels per class"),
        "{}",
        text(&o).1
    );
}

/// Runs the command, asserts success and returns its standard output.
fn ok(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap();
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    stdout
}

/// Runs `contra ARGS...`, asserts success and returns its standard output.
fn succeeds(args: &[&std::ffi::OsStr]) -> String {
    ok(contra().args(args))
}

/// Train `recipe` into `dir/run`; returns the run folder and what `contra` printed.
fn pretrained(dir: &Path, recipe: &Path) -> (PathBuf, String) {
    let run = dir.join("run");
    let stdout = ok(contra()
        .args(["pretrain", "-q", "-r"])
        .arg(recipe)
        .arg("--out")
        .arg(&run));
    (run, stdout)
}

/// The small recipe with one piece of text replaced.
fn edited_recipe(dir: &Path, epochs: u64, from: &str, to: &str) -> PathBuf {
    let recipe = small_recipe(dir, epochs);
    let text = std::fs::read_to_string(&recipe).unwrap();
    assert!(text.contains(from));
    std::fs::write(&recipe, text.replace(from, to)).unwrap();
    recipe
}

/// `--set` reaches any recipe key and is checked like the file; `--json` prints what the
/// text shows; every evaluation is added to eval.json beside the model.
#[test]
fn set_overrides_any_key_and_json_results_are_recorded() {
    let dir = tmp("set");
    let recipe = small_recipe(&dir, 5);
    let run = dir.join("run");
    let stdout = ok(contra()
        .args(["pretrain", "-q", "--no-eval", "-r"])
        .arg(&recipe)
        .args(["--set", "train.epochs=1", "--set", "method.kind=moco"])
        .args(["--set", "method.queue_size=64", "--set", "eval.knn_k=7"])
        .arg("--out")
        .arg(&run));
    assert!(stdout.contains("trained 10 steps"), "{stdout}");
    let stored = contra::recipe::Recipe::from_stored(
        &std::fs::read_to_string(run.join("recipe.toml")).unwrap(),
        Path::new("recipe.toml"),
    )
    .unwrap();
    assert_eq!(stored.method.name(), "moco");
    assert_eq!(stored.method.queue_size(), Some(64));
    assert_eq!(stored.eval.knn_k, 7);
    // A key the kind does not take, a bad value and a malformed setting: clear errors.
    for (set, needle) in [
        ("method.queue_size=64", "method.queue_size"),
        ("train.epochs=many", "epochs"),
        ("train.epochs", "key=value"),
    ] {
        let o = contra()
            .args(["pretrain", "-q", "-r"])
            .arg(&recipe)
            .args(["--set", set])
            .output()
            .unwrap();
        assert_clean_failure(&o, &[needle]);
    }
    let model = run.join("model.safetensors");
    let json = |args: &[&str]| -> serde_json::Value {
        let out = ok(contra().args(args).arg("--json").arg("-m").arg(&model));
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    };
    let rows = json(&["eval", "knn", "--labels-per-class", "0"]);
    assert_eq!(rows[0]["protocol"], "kNN (k=7, t=0.1)");
    let learned = rows[0]["learned"][0].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&learned), "{rows}");
    let r = json(&["eval", "retrieval", "--k", "1,3"]);
    assert_eq!(r["learned"]["recall_at_k"][1][0], 3);
    let log: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(run.join("eval.json")).unwrap()).unwrap();
    let commands: Vec<&str> = log.iter().map(|e| e["command"].as_str().unwrap()).collect();
    assert_eq!(commands, ["eval knn", "eval retrieval"]);
    assert_eq!(log[0]["result"], rows);
    let info: serde_json::Value =
        serde_json::from_str(&ok(contra().args(["info", "--json"]))).unwrap();
    assert!(
        info["backends"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b == "flex")
    );
    ok(contra()
        .args(["embed", "-m"])
        .arg(&model)
        .arg("-o")
        .arg(dir.join("emb")));
    let hits: serde_json::Value = serde_json::from_str(&ok(contra()
        .args(["search", "--json", "--id", "3", "-k", "2", "--index"])
        .arg(dir.join("emb/embeddings.safetensors"))))
    .unwrap();
    assert_eq!(hits.as_array().unwrap().len(), 2);
    assert_ne!(hits[0]["id"], 3);
}

/// `train.steps` instead of epochs, for images as for series: rounded up to whole epochs.
#[test]
fn train_steps_round_up_to_whole_epochs() {
    let dir = tmp("steps");
    // 320 images in batches of 32: 10 steps an epoch, so 15 steps take 2 epochs.
    let recipe = edited_recipe(&dir, 1, "batch_size = 32", "batch_size = 32\nsteps = 15");
    let (run, stdout) = pretrained(&dir, &recipe);
    assert!(stdout.contains("trained 20 steps"), "{stdout}");
    let stored = std::fs::read_to_string(run.join("recipe.toml")).unwrap();
    assert!(stored.contains("epochs = 2"), "{stored}");
}

#[test]
fn one_class_pretraining_reports_anomaly_detection_and_retrieval_works() {
    let dir = tmp("anomaly");
    // Normal class 3 only; the test split (all ten digits) stays whole.
    let recipe = edited_recipe(&dir, 3, "train_limit = 320", "train_classes = [3]");
    let (run, stdout) = pretrained(&dir, &recipe);
    let s = |x: &'static str| std::ffi::OsStr::new(x);
    assert!(
        stdout.contains("anomaly detection of 360 test images")
            && stdout.contains("normal class [3], by kNN (k=5) to 135 normal training images")
            && stdout.contains("AUROC"),
        "{stdout}"
    );
    let model = run.join("model.safetensors");
    let scores = dir.join("scores.csv");
    let stdout = succeeds(&[
        s("eval"),
        s("anomaly"),
        s("--mahalanobis"),
        s("--scores"),
        scores.as_os_str(),
        s("-m"),
        model.as_os_str(),
    ]);
    assert!(stdout.contains("Mahalanobis"), "{stdout}");
    let csv = std::fs::read_to_string(&scores).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "index,label,score,anomalous");
    assert_eq!(lines.len(), 361);
    // Every test item of another class than 3 is flagged anomalous, and only those.
    for l in &lines[1..] {
        let f: Vec<&str> = l.split(',').collect();
        assert_eq!(f[3] == "1", f[1] != "3", "{l}");
        assert!(f[2].parse::<f64>().unwrap().is_finite());
    }
    let stdout = succeeds(&[
        s("eval"),
        s("retrieval"),
        s("--k"),
        s("1,3"),
        s("-m"),
        model.as_os_str(),
    ]);
    assert!(
        stdout.contains("recall@3") && stdout.contains("MAP@R"),
        "{stdout}"
    );
    let o = contra()
        .args(["eval", "anomaly", "--normal-class", "11", "-m"])
        .arg(&model)
        .output()
        .unwrap();
    assert_clean_failure(&o, &["--normal-class", "no training item has class [11]"]);
}

/// A CSI run with `score = "csi"` scores the test set with the paper's detector; the saved
/// model (shift classifier included) gives the same figures again, `--k` scores the same
/// encoder by kNN instead (as `score = "knn"` does), the default averages kNN over the
/// shifts, and recipes CSI cannot train are refused by name.
#[test]
fn csi_trains_on_one_class_and_scores_with_its_own_detector() {
    let dir = tmp("csi");
    let recipe = edited_recipe(
        &dir,
        3,
        "train_limit = 320",
        "train_classes = [3]\n[method]\nkind = \"csi\"\nscore = \"csi\"",
    );
    let (run, stdout) = pretrained(&dir, &recipe);
    assert!(
        stdout.contains("normal class [3], by CSI (")
            && stdout
                .contains("over 4 shifts) (raw inputs: kNN (k=5)) to 135 normal training images"),
        "{stdout}"
    );
    let auroc = |out: &str| -> String {
        out.lines()
            .find(|l| l.starts_with("AUROC"))
            .unwrap_or_else(|| panic!("no AUROC in {out}"))
            .to_string()
    };
    let model = run.join("model.safetensors");
    let again = ok(contra().args(["eval", "anomaly", "-q", "-m"]).arg(&model));
    assert_eq!(auroc(&again), auroc(&stdout), "{again}");
    let knn = ok(contra()
        .args(["eval", "anomaly", "-q", "--k", "5", "-m"])
        .arg(&model));
    assert!(knn.contains("by kNN (k=5) to 135"), "{knn}");
    assert_ne!(auroc(&knn), auroc(&stdout));
    // `score = "knn"`: kNN in the encoder's space, the same figures as `--k 5`.
    let text = std::fs::read_to_string(&recipe).unwrap();
    std::fs::write(&recipe, text.replace("score = \"csi\"", "score = \"knn\"")).unwrap();
    let (_, plain) = pretrained(&dir, &recipe);
    assert!(plain.contains("by kNN (k=5) to 135"), "{plain}");
    assert_eq!(auroc(&plain), auroc(&knn));
    // By default, kNN under every shift, averaged (the best of the three on Fashion-MNIST).
    std::fs::write(&recipe, text.replace("score = \"csi\"", "")).unwrap();
    let (_, shifts) = pretrained(&dir, &recipe);
    assert!(
        shifts.contains("by kNN (k=5) under each of 4 shifts, averaged (raw inputs: kNN (k=5))"),
        "{shifts}"
    );
    assert_ne!(auroc(&shifts), auroc(&knn));
    std::fs::write(&recipe, text).unwrap();
    let refused = |from: &str, to: &str, needles: &[&str]| {
        let text = std::fs::read_to_string(&recipe).unwrap();
        let bad = dir.join("bad.toml");
        std::fs::write(&bad, text.replace(from, to)).unwrap();
        let o = contra()
            .args(["pretrain", "-r"])
            .arg(&bad)
            .output()
            .unwrap();
        assert_clean_failure(&o, needles);
    };
    refused(
        "kind = \"csi\"",
        "kind = \"csi\"\nshifts = [\"rotate_90\", \"rotate_180\"]",
        &["method.shifts", "identity"],
    );
    refused(
        "kind = \"csi\"",
        "kind = \"csi\"\nshifts = [\"identity\", \"rotate_90\", \"rotate_90\"]",
        &["method.shifts", "twice"],
    );
    refused(
        "kind = \"csi\"",
        "kind = \"csi\"\nshifts = [\"identity\", \"rotate_45\"]",
        &["rotate_45"],
    );
}

fn assert_clean_failure(o: &Output, needles: &[&str]) {
    let (_, stderr) = text(o);
    assert!(
        !o.status.success(),
        "expected failure, got success: {stderr}"
    );
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "`{n}` not in: {stderr}");
    }
}

#[test]
fn bad_input_gets_a_clear_error_and_a_non_zero_exit() {
    let dir = tmp("errors");
    let bad = dir.join("bad.toml");
    let pretrain_fails = |recipe: &str, needles: &[&str]| {
        std::fs::write(&bad, recipe).unwrap();
        assert_clean_failure(
            &contra()
                .args(["pretrain", "-r"])
                .arg(&bad)
                .output()
                .unwrap(),
            needles,
        );
    };
    let with_data = |source: &str, path: &Path| {
        format!(
            "[data]\nsource = \"{source}\"\npath = \"{}\"\n[optimizer]\nlr = 0.1\n",
            path.display()
        )
    };
    pretrain_fails(
        "[optimizer]\nlr = 0.1\n[train]\nepochs = 2\nbatchsize = 3\n",
        &["bad.toml", "batchsize", "line 5"],
    );
    pretrain_fails(
        "[optimizer]\nlr = 0.1\nkind = \"lbfgs\"\n",
        &["optimizer.kind", "lbfgs"],
    );
    assert_clean_failure(
        &contra()
            .args(["pretrain", "-r"])
            .arg(dir.join("none.toml"))
            .output()
            .unwrap(),
        &["none.toml"],
    );
    // A data set that is not there.
    pretrain_fails(
        &with_data("mnist", &dir.join("no-mnist")),
        &["not found", "no-mnist"],
    );
    // A truncated IDX file.
    let m = dir.join("mnist");
    std::fs::create_dir_all(&m).unwrap();
    for name in ["train-images-idx3-ubyte", "t10k-images-idx3-ubyte"] {
        contra::data::idx::write_idx(&m.join(name), &[4, 28, 28], &[0u8; 4 * 784]).unwrap();
    }
    for name in ["train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"] {
        contra::data::idx::write_idx(&m.join(name), &[4], &[0, 1, 2, 3]).unwrap();
    }
    let p = m.join("train-images-idx3-ubyte");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..1000]).unwrap();
    pretrain_fails(
        &with_data("mnist", &m),
        &["train-images-idx3-ubyte", "truncated"],
    );
    // A corrupt PNG in an image folder.
    let f = dir.join("pics/a");
    std::fs::create_dir_all(&f).unwrap();
    std::fs::write(f.join("x.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    pretrain_fails(&with_data("folder", &dir.join("pics")), &["x.png", "PNG"]);
    // Resuming with no checkpoint, an unknown device, a model that is not one.
    assert_clean_failure(
        &contra()
            .args(["pretrain", "--resume", "--out"])
            .arg(dir.join("fresh"))
            .output()
            .unwrap(),
        &["cannot resume", "checkpoint.safetensors"],
    );
    assert_clean_failure(
        &contra()
            .args(["pretrain", "--device", "tpu"])
            .output()
            .unwrap(),
        &["unknown device `tpu`"],
    );
    let fake = dir.join("fake.safetensors");
    std::fs::write(&fake, b"not safetensors").unwrap();
    assert_clean_failure(
        &contra()
            .args(["eval", "knn", "-m"])
            .arg(&fake)
            .output()
            .unwrap(),
        &["fake.safetensors", "safetensors"],
    );
}

#[test]
fn help_lists_every_command() {
    let o = contra().arg("--help").output().unwrap();
    let (stdout, _) = text(&o);
    for c in ["pretrain", "eval", "embed", "info"] {
        assert!(stdout.contains(c), "{stdout}");
    }
    let o = contra().args(["pretrain", "--help"]).output().unwrap();
    let (stdout, _) = text(&o);
    for flag in ["--recipe", "--resume", "--device", "--epochs", "--out"] {
        assert!(stdout.contains(flag), "{stdout}");
    }
    let o = contra().arg("info").output().unwrap();
    let (stdout, _) = text(&o);
    assert!(
        stdout.contains("flex") && stdout.contains("digits: bundled"),
        "{stdout}"
    );
}

/// The weights of `pretrain --no-eval` on the recipe `body`, with `threads` compute threads.
fn weights_with_threads(
    dir: &Path,
    body: &str,
    threads: &str,
    out: &str,
) -> std::collections::HashMap<String, contra::checkpoint::HostTensor> {
    let recipe = dir.join(format!("{out}.toml"));
    std::fs::write(&recipe, body).unwrap();
    let o = contra()
        .env("RAYON_NUM_THREADS", threads)
        .args(["pretrain", "-q", "--no-eval", "-r"])
        .arg(&recipe)
        .arg("--out")
        .arg(dir.join(out))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o).1);
    let weights = contra::checkpoint::read_safetensors(&dir.join(out).join("model.safetensors"))
        .unwrap()
        .0;
    assert!(!weights.is_empty());
    weights
}

fn assert_same_weights(
    one: &std::collections::HashMap<String, contra::checkpoint::HostTensor>,
    other: &std::collections::HashMap<String, contra::checkpoint::HostTensor>,
) {
    for (k, t) in one {
        assert_eq!(
            Some(t),
            other.get(k),
            "tensor {k} depends on the thread count"
        );
    }
}

/// The same seed gives the same weights with 1 or 3 compute threads and 1 or 3 augmentation
/// workers.
#[test]
fn results_do_not_depend_on_the_number_of_threads() {
    let dir = tmp("threads");
    let base = std::fs::read_to_string(small_recipe(&dir, 2)).unwrap();
    // Upscaled 24x24 views make the activations large enough for every parallel code path.
    let body = |workers: &str| {
        base.replace("size = 8,", "size = 24,")
            .replace("workers = 2", &format!("workers = {workers}"))
    };
    let one = weights_with_threads(&dir, &body("1"), "1", "one");
    let three = weights_with_threads(&dir, &body("3"), "3", "three");
    assert_same_weights(&one, &three);
}

/// TS2Vec too (dilated 1D convolutions, GELU, the hierarchical loss): the same weights with 1
/// or 3 compute threads.
#[test]
fn ts2vec_results_do_not_depend_on_the_number_of_threads() {
    if !have_data("ucr/GunPoint/GunPoint_TRAIN.ts") {
        return;
    }
    let dir = tmp("ts2vec-threads");
    let body = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../recipes/ts2vec-gunpoint.toml"),
    )
    .unwrap()
    .replace("steps = 200", "steps = 7");
    let one = weights_with_threads(&dir, &body, "1", "one");
    let three = weights_with_threads(&dir, &body, "3", "three");
    assert_same_weights(&one, &three);
}

/// `chromium` on PATH; required where CONTRA_REQUIRE_CHROMIUM is set (CI installs it).
fn chromium() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("chromium"))
            .find(|p| p.is_file())
    });
    if found.is_none() && std::env::var_os("CONTRA_REQUIRE_CHROMIUM").is_some() {
        panic!("CONTRA_REQUIRE_CHROMIUM is set and chromium is not on PATH");
    }
    found
}

#[test]
fn report_gathers_curves_tables_and_maps_into_a_page_whose_images_load() {
    let dir = tmp("report");
    let recipe = edited_recipe(&dir, 2, "[eval]", "knn_monitor = 200\n[eval]");
    let (run, _) = pretrained(&dir, &recipe);
    let s = |x: &'static str| std::ffi::OsStr::new(x);
    // A few-label table in the run folder joins the page.
    succeeds(&[
        s("eval"),
        s("fewshot"),
        s("--labels"),
        s("3"),
        s("--seeds"),
        s("2"),
        s("--finetune-steps"),
        s("0"),
        s("-m"),
        run.join("model.safetensors").as_os_str(),
    ]);
    let stdout = succeeds(&[s("report"), run.as_os_str(), s("--map-points"), s("150")]);
    let out = run.join("report");
    assert!(stdout.contains("report.html"), "{stdout}");
    for name in ["curves", "map-pca", "map-tsne"] {
        let png = std::fs::read(out.join(format!("{name}.png"))).unwrap();
        assert_eq!(&png[1..4], b"PNG", "{name}");
        let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
        assert!(width >= 760, "{name}: {width}");
        let svg = std::fs::read_to_string(out.join(format!("{name}.svg"))).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{name}"
        );
    }
    // 150 dots in each map, plus ten legend dots.
    let svg = std::fs::read_to_string(out.join("map-tsne.svg")).unwrap();
    assert_eq!(svg.matches("<circle").count(), 160);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    for part in [
        "curves.png",
        "map-pca.png",
        "map-tsne.png",
        "kNN monitor",
        "kNN (k=10, t=0.1)",
        "3/class (30)",
        "[encoder]",
    ] {
        assert!(
            html.contains(part)
                || std::fs::read_to_string(out.join("curves.svg"))
                    .unwrap()
                    .contains(part),
            "{part}"
        );
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("![Training curves (also curves.svg)](curves.png)"),
        "{md}"
    );
    // Rendered headlessly: every image loads.
    if let Some(chromium) = chromium() {
        let o = Command::new(chromium)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
            .arg(format!("file://{}", out.join("report.html").display()))
            .output()
            .unwrap();
        let dom = String::from_utf8_lossy(&o.stdout);
        assert!(
            dom.contains("data-images-total=\"3\" data-images-loaded=\"3\""),
            "{}",
            &dom[..dom.len().min(400)]
        );
    }
}

/// The SVM's accuracies a series pretraining prints (learned, raw).
fn accuracy_line(stdout: &str) -> Vec<f64> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("SVM (RBF"))
        .unwrap_or_else(|| panic!("{stdout}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    words[words.len() - 2..]
        .iter()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{line}")))
        .collect()
}

/// Whether `$CONTRA_DATA/<rel>` exists; where CONTRA_REQUIRE_DATA is set its absence fails
/// the test, elsewhere the test is skipped with a message.
fn have_data(rel: &str) -> bool {
    let found = std::env::var_os("CONTRA_DATA")
        .map(|d| PathBuf::from(d).join(rel))
        .is_some_and(|p| p.exists());
    if !found {
        assert!(
            std::env::var_os("CONTRA_REQUIRE_DATA").is_none(),
            "$CONTRA_DATA/{rel} not found"
        );
        eprintln!("skipping: $CONTRA_DATA/{rel} not found");
    }
    found
}

/// TS2Vec on a real UCR set ($CONTRA_DATA/ucr/GunPoint, as CI provides it): trains on the one
/// loop, writes the model and reports the SVM on learned and raw series.
#[test]
fn ts2vec_pretrains_on_a_ucr_set_and_reports_the_svm() {
    if !have_data("ucr/GunPoint/GunPoint_TRAIN.ts") {
        return;
    }
    let dir = tmp("ts2vec");
    let recipe = dir.join("ts2vec.toml");
    std::fs::write(
        &recipe,
        r#"name = "ts2vec-small"
[data]
source = "ucr"
name = "GunPoint"
[encoder]
kind = "ts2vec"
hidden = 16
output = 32
depth = 3
[method]
kind = "ts2vec"
[optimizer]
kind = "adamw"
lr = 0.001
[train]
batch_size = 8
steps = 12
"#,
    )
    .unwrap();
    let (run, stdout) = pretrained(&dir, &recipe);
    // 50 series, batches of 8: 6 steps an epoch, 12 steps in 2 epochs.
    assert!(stdout.contains("trained 12 steps"), "{stdout}");
    assert!(run.join("model.safetensors").is_file());
    let accs = accuracy_line(&stdout);
    let line = format!("{accs:?}");
    assert_eq!(accs.len(), 2);
    // 150 test series: accuracies are multiples of 1/150, well above chance (0.5).
    assert!(
        accs.iter()
            .all(|a| *a > 0.6 && (a * 150.0 - (a * 150.0).round()).abs() < 0.02),
        "{line}"
    );
    // The few-label table on series: kNN, probe and SVM on three representations, and
    // fine-tuning beside training from scratch.
    let model = run.join("model.safetensors");
    let table = ok(contra()
        .args(["eval", "fewshot", "--labels", "2", "--seeds", "2"])
        .args(["--finetune-steps", "10", "-m"])
        .arg(&model));
    let md = std::fs::read_to_string(run.join("fewshot.md")).unwrap();
    assert!(
        md.contains("pretrained | random init | raw series | from scratch")
            && table.contains("SVM (RBF)"),
        "{md}"
    );
    for protocol in ["kNN", "linear probe", "SVM (RBF)", "fine-tuning"] {
        assert!(
            md.contains(&format!("| 2/class (4) | {protocol} |")),
            "{md}"
        );
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("fewshot.json")).unwrap()).unwrap();
    let cells = json["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 3 * 3 + 2);
    for c in cells {
        let acc = c["accuracy"][0].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc), "{c}");
    }
    // Anomaly scores of every test series, class 1 as the anomaly.
    let scores = dir.join("scores.csv");
    let out = ok(contra()
        .args(["eval", "anomaly", "--normal-class", "0", "-m"])
        .arg(&model)
        .arg("--scores")
        .arg(&scores));
    assert!(
        out.contains("150 test series") && out.contains("AUROC"),
        "{out}"
    );
    let csv = std::fs::read_to_string(&scores).unwrap();
    assert_eq!(csv.lines().next(), Some("index,label,score,anomalous"));
    assert_eq!(csv.lines().count(), 151);
    // Export and search by id.
    ok(contra()
        .args(["embed", "-m"])
        .arg(&model)
        .arg("-o")
        .arg(dir.join("emb")));
    let found = ok(contra()
        .args(["search", "--id", "7", "-k", "2", "--index"])
        .arg(dir.join("emb/embeddings.safetensors")));
    assert!(
        found.contains("2 nearest of 150 items to item 7"),
        "{found}"
    );
    // The report of a series run: curves, the evaluation beside raw series, maps, recipe.
    ok(contra().arg("report").arg(&run));
    let html = std::fs::read_to_string(run.join("report/report.html")).unwrap();
    assert!(
        html.contains("curves.png")
            && html.contains("raw series")
            && html.contains("map-tsne")
            && html.contains("GunPoint"),
        "{html}"
    );
    // Image-only settings are refused, not ignored.
    let base = std::fs::read_to_string(&recipe).unwrap();
    std::fs::write(
        &recipe,
        base.replace("steps = 12", "steps = 12\nknn_monitor = 100"),
    )
    .unwrap();
    let o = contra()
        .args(["pretrain", "-r"])
        .arg(&recipe)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).1.contains("train.knn_monitor"), "{}", text(&o).1);
    // An instance method needs the views' augmentations; TS2Vec makes its own.
    let simclr = base.replace(
        "kind = \"ts2vec\"\n[optimizer]",
        "kind = \"simclr\"\n[optimizer]",
    );
    std::fs::write(&recipe, &simclr).unwrap();
    let o = contra()
        .args(["pretrain", "-r"])
        .arg(&recipe)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).1.contains("augment.series"), "{}", text(&o).1);
    let views = "[[augment.series]]\nop = \"jitter\"\nsigma = 0.03\n[encoder]";
    std::fs::write(&recipe, base.replace("[encoder]", views)).unwrap();
    let o = contra()
        .args(["pretrain", "-r"])
        .arg(&recipe)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).1.contains("augment.series"), "{}", text(&o).1);
}

/// The instance methods (SimCLR, MoCo) on augmented views of series, with the TS2Vec encoder:
/// they train on the one loop and their embeddings are evaluated by the same SVM.
#[test]
fn instance_methods_train_on_series_views() {
    if !have_data("ucr/GunPoint/GunPoint_TRAIN.ts") {
        return;
    }
    for method in ["simclr", "moco"] {
        let dir = tmp(&format!("series-{method}"));
        let recipe = dir.join("r.toml");
        std::fs::write(
            &recipe,
            format!(
                r#"name = "series-{method}"
[data]
source = "ucr"
name = "GunPoint"
[[augment.series]]
op = "time_warp"
sigma = 0.2
knots = 4
[[augment.series]]
op = "jitter"
sigma = 0.03
[encoder]
kind = "ts2vec"
hidden = 16
output = 32
depth = 3
[head]
hidden_dim = 32
output_dim = 16
[method]
kind = "{method}"
{queue}
[optimizer]
kind = "adamw"
lr = 0.001
[train]
batch_size = 10
steps = 10
"#,
                queue = if method == "moco" {
                    "queue_size = 64"
                } else {
                    ""
                }
            ),
        )
        .unwrap();
        let (run, stdout) = pretrained(&dir, &recipe);
        assert!(stdout.contains("trained 10 steps"), "{stdout}");
        assert!(run.join("model.safetensors").is_file());
        let accs = accuracy_line(&stdout);
        assert!(accs[0] > 0.6, "{method}: {accs:?}");
    }
}

/// A noisy periodic stream with events the training part never shows (spikes, a level
/// shift, a dropped point): NCAD, trained only on injected anomalies, scores the test windows
/// with its own detector and ranks the event rows above the normal ones; bad settings are
/// refused by key.
#[test]
fn ncad_finds_events_in_a_generated_stream() {
    let dir = tmp("ncad");
    let mut rng = contra::rng::Rng::new(5);
    let mut stream = |rows: usize, events: &[(usize, usize, f64)]| {
        let mut csv = String::from("t,value,label\n");
        for t in 0..rows {
            let mut v = (t as f64 / 5.0).sin() + 0.1 * rng.normal();
            let mut label = 0;
            for &(start, len, by) in events {
                if (start..start + len).contains(&t) {
                    v += by;
                    label = 1;
                }
            }
            csv.push_str(&format!("{t},{v:.4},{label}\n"));
        }
        csv
    };
    std::fs::write(dir.join("train.csv"), stream(1200, &[])).unwrap();
    std::fs::write(
        dir.join("test.csv"),
        stream(800, &[(150, 3, 3.0), (400, 12, -2.5), (610, 1, -4.0)]),
    )
    .unwrap();
    let recipe = dir.join("ncad.toml");
    let write = |method: &str, window: usize| {
        std::fs::write(
            &recipe,
            format!(
                "name = \"ncad\"\nseed = 1\n[data]\nsource = \"csv\"\npath = {:?}\ntest_path = {:?}\n\
                 columns = {{ timestamp = \"t\", values = [\"value\"], label = \"label\" }}\n\
                 window = {window}\nstride = 4\n[encoder]\nkind = \"ts2vec\"\nhidden = 16\noutput = 32\ndepth = 3\n\
                 [method]\n{method}\n[optimizer]\nkind = \"adamw\"\nlr = 0.003\n[schedule]\nwarmup_epochs = 0.0\n\
                 decay = \"constant\"\n[train]\nbatch_size = 16\nsteps = 120\nworkers = 1\n",
                dir.join("train.csv"),
                dir.join("test.csv"),
            ),
        )
        .unwrap();
    };
    write("kind = \"ncad\"\nsuspect = 4\nscore = \"contextual\"", 24);
    let (run, stdout) = pretrained(&dir, &recipe);
    assert!(
        stdout
            .contains("by NCAD (each window's distance to its context, the last 4 steps suspect)"),
        "{stdout}"
    );
    let step_auroc = |out: &str| -> f64 {
        let table = out.split("per time step").nth(1).expect("a per-step table");
        let line = table.lines().find(|l| l.starts_with("AUROC")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    assert!(step_auroc(&stdout) > 0.9, "{stdout}");
    let again = ok(contra()
        .args(["eval", "anomaly", "-q", "-m"])
        .arg(run.join("model.safetensors")));
    assert_eq!(step_auroc(&again), step_auroc(&stdout));
    // By default the trained encoder scores by kNN over whole windows, as `--k 5` does.
    write("kind = \"ncad\"\nsuspect = 4", 24);
    let (run, knn) = pretrained(&dir, &recipe);
    assert!(knn.contains("by kNN (k=5) to"), "{knn}");
    let again = ok(contra()
        .args(["eval", "anomaly", "-q", "--k", "5", "-m"])
        .arg(run.join("model.safetensors")));
    assert_eq!(step_auroc(&again), step_auroc(&knn));
    assert_ne!(step_auroc(&knn), step_auroc(&stdout));
    for (method, window, needles) in [
        (
            "kind = \"ncad\"\nsuspect = 24",
            24,
            &["method.suspect", "data.window (24)"][..],
        ),
        (
            "kind = \"ncad\"\ninjected = 0.0\nuse_labels = false",
            24,
            &["method.injected"][..],
        ),
        (
            "kind = \"ncad\"\ninject = { swap = -1.0 }",
            24,
            &["method.inject"][..],
        ),
    ] {
        write(method, window);
        let o = contra()
            .args(["pretrain", "-r"])
            .arg(&recipe)
            .output()
            .unwrap();
        assert_clean_failure(&o, needles);
    }
}

/// Anomaly detection on a real sensor stream ($CONTRA_DATA/ucr/KDD-TSAD_135): windows of the
/// clean training prefix pretrain TS2Vec; the test windows are scored and evaluated.
#[test]
fn ts2vec_scores_sensor_stream_windows() {
    if !have_data("ucr/KDD-TSAD_135") {
        return;
    }
    let dir = tmp("stream");
    let recipe = dir.join("stream.toml");
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../recipes/ts2vec-sensor-anomaly.toml"),
    )
    .unwrap()
    .replace(
        "kind = \"ts2vec\"\n\n[method]",
        "kind = \"ts2vec\"\nhidden = 16\noutput = 32\ndepth = 3\n\n[method]",
    )
    .replace("steps = 200", "steps = 9");
    std::fs::write(&recipe, text).unwrap();
    let (run, stdout) = pretrained(&dir, &recipe);
    assert!(run.join("model.safetensors").is_file());
    // 1,200 training rows in windows of 64 every 16: 72 windows, 9 steps of 8.
    assert!(stdout.contains("trained 9 steps"), "{stdout}");
    assert!(
        stdout.contains(
            "465 test windows (5 anomalous), normal class [0], by kNN (k=5) to 72 normal training windows"
        ),
        "{stdout}"
    );
    // Per-window scores, with each window's place in its stream.
    let scores = dir.join("scores.csv");
    ok(contra()
        .args(["eval", "anomaly", "-m"])
        .arg(run.join("model.safetensors"))
        .arg("--scores")
        .arg(&scores));
    let csv = std::fs::read_to_string(&scores).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(
        rows[0],
        [
            "index",
            "stream",
            "first_row",
            "timestamp",
            "label",
            "score",
            "anomalous"
        ]
    );
    assert_eq!(rows.len(), 466);
    // Windows of 64 rows every 16 rows.
    assert_eq!((rows[1][2], rows[2][2], rows[465][2]), ("0", "16", "7424"));
    assert_eq!(rows.iter().skip(1).filter(|r| r[6] == "1").count(), 5);
    // The test windows' embeddings name their stream and first row.
    ok(contra()
        .args(["embed", "-m"])
        .arg(run.join("model.safetensors"))
        .arg("--out")
        .arg(dir.join("index")));
    let out = ok(contra()
        .args(["search", "--json", "--id", "1", "-k", "2", "--index"])
        .arg(dir.join("index/embeddings.safetensors")));
    let hits: serde_json::Value = serde_json::from_str(&out).unwrap();
    let item = hits[0]["item"].as_str().unwrap();
    assert!(
        item.rsplit_once(':').is_some_and(
            |(stream, row)| !stream.is_empty() && row.parse::<usize>().unwrap() % 16 == 0
        ),
        "{item}"
    );
    // Learned, raw windows and random scores; intervals in brackets beside AUROC and AUPRC.
    for metric in ["AUROC", "AUPRC", "best F1 (oracle threshold)"] {
        let line = stdout.lines().find(|l| l.starts_with(metric)).unwrap();
        let v: Vec<f64> = line[metric.len()..]
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        assert!(
            v.len() == 3 && v.iter().all(|x| (0.0..=1.0).contains(x)),
            "{line}"
        );
        if metric != "AUPRC" && metric != "AUROC" {
            continue;
        }
        let (lo, hi) = line
            .split('(')
            .nth(1)
            .and_then(|r| r.split(')').next())
            .and_then(|r| r.split_once('-'))
            .map(|(a, b)| (a.parse::<f64>().unwrap(), b.parse::<f64>().unwrap()))
            .unwrap();
        assert!(lo <= v[0] + 5e-4 && v[0] <= hi + 5e-4, "{line}");
    }
    // Per time step: the test part's 7,501 rows (12 anomalous), scored by their windows.
    assert!(
        stdout.contains("per time step (7501 steps, 12 anomalous;"),
        "{stdout}"
    );
    let row = |metric: &str| -> Vec<f64> {
        let line = stdout.lines().find(|l| l.starts_with(metric)).unwrap();
        line[metric.len()..]
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect()
    };
    let (pa, area) = (
        row("F1 point-adjusted (oracle)"),
        row("F1-PA%K area, K 0-100 (oracle)"),
    );
    for (metric, v) in [("VUS-ROC", row("VUS-ROC")), ("VUS-PR", row("VUS-PR"))] {
        assert!(
            v.len() == 3 && v.iter().all(|x| (0.0..=1.0).contains(x)),
            "{metric} {v:?}"
        );
    }
    // Point adjustment at K = 0 is the most lenient: the area over K never exceeds it.
    for (a, p) in area.iter().zip(&pa) {
        assert!(a <= p, "PA%K area {area:?} above F1-PA {pa:?}");
    }
}

fn tiny_bert() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../contra/tests/fixtures/text/tiny-bert")
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

/// SimCSE's two views differ only by dropout, whose masks follow the rows: a text run killed
/// mid-epoch and resumed ends with the weights of the uninterrupted run.
#[test]
fn killed_simcse_run_resumes_exactly() {
    let dir = tmp("resume-simcse");
    let recipe = simcse_recipe(&dir);
    kill_and_resume_recipe(&dir, &recipe, 100);
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
    // STS: three identical pairs (score 5, cosine 1) and three different ones (score 1):
    // whatever the model, the identical pairs rank first, which gives Spearman at least
    // 13.5 / sqrt(17.5 x 13.5) (0.878, their cosines untied; 0.933 tied at exactly 1).
    let sts = dir.join("sts.tsv");
    std::fs::write(
        &sts,
        "sentence1\tsentence2\tscore\na dog\ta dog\t5\nthe sun\tthe sun\t5\nrain\train\t5\n\
         a dog\tthe stock market\t1\nthe sun\tmusic plays\t1\nrain\ta quick fox\t1\n",
    )
    .unwrap();
    let out = ok(contra()
        .args(["eval", "sts", "--json", "-m"])
        .arg(&model)
        .arg("--file")
        .arg(&sts));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["pairs"], 6);
    let least = 13.5 / (17.5f64 * 13.5).sqrt() - 1e-9;
    assert!(v["spearman"].as_f64().unwrap() >= least, "{v}");
    std::fs::write(&sts, "sentence1\tsentence2\tscore\na\tb\thigh\n").unwrap();
    let o = contra()
        .args(["eval", "sts", "-m"])
        .arg(&model)
        .arg("--file")
        .arg(&sts)
        .output()
        .unwrap();
    assert!(
        !o.status.success() && text(&o).1.contains("line 2"),
        "{}",
        text(&o).1
    );
    // BEIR: each query is one document's title and text: found first.
    let beir = dir.join("beir");
    std::fs::create_dir_all(beir.join("qrels")).unwrap();
    std::fs::write(
        beir.join("corpus.jsonl"),
        "{\"_id\": \"d1\", \"title\": \"Dogs\", \"text\": \"a dog barks\"}\n\
         {\"_id\": \"d2\", \"title\": \"\", \"text\": \"the stock market fell\"}\n\
         {\"_id\": \"d3\", \"title\": \"Music\", \"text\": \"music in the park\"}\n",
    )
    .unwrap();
    std::fs::write(
        beir.join("queries.jsonl"),
        "{\"_id\": \"q1\", \"text\": \"Dogs a dog barks\"}\n{\"_id\": \"q2\", \"text\": \"the stock market fell\"}\n\
         {\"_id\": \"q3\", \"text\": \"not judged\"}\n",
    )
    .unwrap();
    std::fs::write(
        beir.join("qrels/test.tsv"),
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t2\n",
    )
    .unwrap();
    let out = ok(contra()
        .args(["eval", "beir", "--json", "-m"])
        .arg(&model)
        .arg("--dir")
        .arg(&beir));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["queries"], 2);
    for k in [
        "ndcg_at_10",
        "mrr_at_10",
        "recall_at_1",
        "recall_at_100",
        "map_at_100",
    ] {
        assert!((v[k].as_f64().unwrap() - 1.0).abs() < 1e-9, "{k}: {v}");
    }
    // Exported in the sentence-transformers layout, the model reads back through the
    // Hugging Face loader (burn's store, key remapping) and embeds as the model file does.
    let folder = dir.join("exported");
    ok(contra()
        .args(["export", "-m"])
        .arg(&model)
        .arg("--out")
        .arg(&folder));
    let device = contra::device::parse("cpu").unwrap();
    let st = contra::encoders::sentence::SentenceModelDir::open(&folder).unwrap();
    let reread = st.encoder(&device).unwrap();
    let file = contra::train::TrainedFile::read(&model).unwrap();
    let trained = contra::workflow::text::read_text_model(&file, &device).unwrap();
    let texts = ["a dog barks", "the stock market fell today"];
    let a = trained.embed_texts(&texts, &device).unwrap();
    let b = contra::encoders::sentence::encode_sentences(
        &reread,
        &st.tokenizer(None).unwrap(),
        &texts,
        8,
        &device,
    )
    .unwrap();
    assert_eq!(a.data, b.data);
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

/// SupCon and triplet train text encoders from labelled sentences (a projection head on the
/// sentence embedding, each sentence's two views differing by dropout, P x K batches): SupCon's
/// loss falls over the epochs, and both runs' model files read back as text models.
#[test]
fn labelled_sentences_train_with_supcon_and_triplet() {
    let dir = tmp("supcon-text");
    let data = dir.join("labelled.csv");
    let mut s = String::from("text,label\n");
    for i in 0..32 {
        s.push_str(&format!("the dog {i} runs in the park,animal\n"));
        s.push_str(&format!("the stock market {i} fell on monday,finance\n"));
    }
    std::fs::write(&data, s).unwrap();
    let recipe = dir.join("supcon.toml");
    std::fs::write(
        &recipe,
        format!(
            "seed = 2\n[data]\nsource = \"text\"\npath = {:?}\n[encoder]\nkind = \"bert\"\n\
             path = {:?}\n[head]\nhidden_dim = 32\noutput_dim = 16\n[method]\nkind = \"supcon\"\n\
             temperature = 0.1\n[optimizer]\nkind = \"adamw\"\nlr = 1e-3\n[train]\nepochs = 6\n\
             batch_size = 16\nper_class = 8\n",
            data.display().to_string(),
            tiny_bert().display().to_string()
        ),
    )
    .unwrap();
    for (kind, run) in [("supcon", "run-supcon"), ("triplet", "run-triplet")] {
        let out = dir.join(run);
        ok(contra()
            .args(["pretrain", "-q", "--no-eval", "-r"])
            .arg(&recipe)
            .args(["--set", &format!("method.kind={kind}")])
            .arg("--out")
            .arg(&out));
        let file = contra::train::TrainedFile::read(&out.join("model.safetensors")).unwrap();
        assert_eq!(file.recipe.method.name(), kind);
        let device = contra::device::parse("cpu").unwrap();
        let model = contra::workflow::text::read_text_model(&file, &device).unwrap();
        assert_eq!(model.embed_texts(&["a dog"], &device).unwrap().dim, 32);
        if kind == "supcon" {
            let means: Vec<f64> = std::fs::read_to_string(out.join("metrics.jsonl"))
                .unwrap()
                .lines()
                .filter_map(|l| {
                    serde_json::from_str::<serde_json::Value>(l).ok()?["epoch_mean_loss"].as_f64()
                })
                .collect();
            assert_eq!(means.len(), 6);
            assert!(means[5] < means[0] * 0.9, "{means:?}");
        }
    }
}

/// A PNG of one colour with a little noise (contra's own PNG writer).
fn square_png(path: &Path, rgb: [u8; 3], seed: usize) {
    let (w, h) = (8, 8);
    let pixels: Vec<u8> = (0..w * h * 3)
        .map(|i| {
            let noise = ((i * 31 + seed * 17) % 23) as i32 - 11;
            (rgb[i % 3] as i32 + noise).clamp(0, 255) as u8
        })
        .collect();
    let png = contra::plot::Raster {
        width: w,
        height: h,
        pixels,
    }
    .to_png()
    .unwrap();
    std::fs::write(path, png).unwrap();
}

/// CLIP on a folder of coloured squares with a captions file and the tiny BERT frozen:
/// pretraining prints zero-shot accuracy and retrieval, `eval zeroshot` records them, an image
/// index answers a text query and a text index an image query, through the shared space.
#[test]
fn clip_trains_on_captioned_images_and_searches_across_modalities() {
    let dir = tmp("clip");
    let colours: [(&str, [u8; 3]); 4] = [
        ("red", [230, 20, 20]),
        ("green", [20, 200, 30]),
        ("blue", [20, 30, 220]),
        ("yellow", [240, 230, 20]),
    ];
    let mut csv = String::from("image,caption,label\n");
    for i in 0..40 {
        let (name, rgb) = colours[i % 4];
        square_png(&dir.join(format!("{i}.png")), rgb, i);
        csv += &format!("{i}.png,a {name} square,{name}\n{i}.png,{name},{name}\n");
    }
    std::fs::write(dir.join("captions.csv"), csv).unwrap();
    let recipe = dir.join("clip.toml");
    std::fs::write(
        &recipe,
        format!(
            "seed = 2\n[data]\nsource = \"captions\"\npath = {:?}\nimage_size = 8\ntest_fraction = 0.25\n\
             [augment]\nsteps = [{{ op = \"normalize\", mean = [0.5, 0.5, 0.5], std = [0.5, 0.5, 0.5] }}]\n\
             [encoder]\nkind = \"small_cnn\"\nwidths = [8, 8, 16, 16]\n[text]\npath = {:?}\n\
             [method]\nkind = \"clip\"\ndim = 16\nfreeze_text = true\n\
             [optimizer]\nkind = \"adamw\"\nlr = 3e-3\n[train]\nepochs = 3\nbatch_size = 10\n\
             [eval]\nknn_k = 5\nlabels_per_class = [2]\nseeds = 2\n",
            dir.join("captions.csv").display().to_string(),
            tiny_bert().display().to_string()
        ),
    )
    .unwrap();
    let run = dir.join("run");
    let out = ok(contra()
        .args(["pretrain", "-q", "-r"])
        .arg(&recipe)
        .arg("--out")
        .arg(&run));
    assert!(
        out.contains("zero-shot")
            && out.contains("\nlabel ")
            && out.contains("image->text (10 images, "),
        "{out}"
    );
    let model = run.join("model.safetensors");
    let out = ok(contra()
        .args(["eval", "zeroshot", "--json", "-m"])
        .arg(&model));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let z = &v["zero_shot"][0];
    assert_eq!(
        (z["classes"].as_u64(), z["images"].as_u64()),
        (Some(4), Some(10))
    );
    assert!((0.0..=1.0).contains(&z["accuracy"].as_f64().unwrap()));
    let scale = v["logit_scale"].as_f64().unwrap();
    assert!((1.0..=100.0).contains(&scale), "{scale}");
    let recorded = std::fs::read_to_string(run.join("eval.json")).unwrap();
    assert!(recorded.contains("eval zeroshot"), "{recorded}");
    // The few-label table on the image tower: its embedding feeds kNN and the probe, and
    // fine-tuning trains the tower with its projection from the probe's classifier.
    let out = ok(contra()
        .args([
            "eval",
            "fewshot",
            "--labels",
            "2",
            "--seeds",
            "1",
            "--finetune-steps",
            "3",
            "-m",
        ])
        .arg(&model));
    assert!(
        out.contains("fine-tuning") && out.contains("linear probe"),
        "{out}"
    );
    // An image index answers a caption, embedded by the text tower.
    let images = dir.join("images");
    ok(contra()
        .args(["embed", "--split", "train", "-m"])
        .arg(&model)
        .arg("--out")
        .arg(&images));
    let out = ok(contra()
        .args([
            "search",
            "--json",
            "-k",
            "5",
            "--text",
            "a red square",
            "--index",
        ])
        .arg(images.join("embeddings.safetensors")));
    let hits: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(hits.as_array().unwrap().len(), 5);
    // A text index answers an image, embedded by the image tower.
    let captions = dir.join("captions.txt");
    std::fs::write(
        &captions,
        "a red square\na green square\na blue square\na yellow square\n",
    )
    .unwrap();
    let texts = dir.join("texts");
    ok(contra()
        .args(["embed", "-m"])
        .arg(&model)
        .arg("--texts")
        .arg(&captions)
        .arg("--out")
        .arg(&texts));
    let out = ok(contra()
        .args(["search", "--json", "-k", "4", "--image"])
        .arg(dir.join("0.png"))
        .arg("--index")
        .arg(texts.join("embeddings.safetensors")));
    let hits: serde_json::Value = serde_json::from_str(&out).unwrap();
    let found: Vec<&str> = hits
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["text"].as_str().unwrap())
        .collect();
    assert_eq!(found.len(), 4);
    assert!(found.contains(&"a red square"), "{found:?}");
    // LiT: the image tower starts from a SimCLR run on the same images and stays frozen.
    let simclr = dir.join("simclr.toml");
    std::fs::write(
        &simclr,
        "seed = 1\n[data]\nsource = \"folder\"\npath = \"IMAGES\"\nimage_size = 8\n\
         [augment]\nsteps = [{ op = \"horizontal_flip\", p = 0.5 }, { op = \"normalize\", mean = [0.5, 0.5, 0.5], std = [0.5, 0.5, 0.5] }]\n\
         [encoder]\nkind = \"small_cnn\"\nwidths = [8, 8, 16, 16]\n[optimizer]\nlr = 0.05\n[train]\nepochs = 1\nbatch_size = 10\n"
            .replace("IMAGES", &dir.display().to_string()),
    )
    .unwrap();
    let ssl = dir.join("ssl");
    ok(contra()
        .args(["pretrain", "-q", "--no-eval", "-r"])
        .arg(&simclr)
        .arg("--out")
        .arg(&ssl));
    let lit = dir.join("lit");
    ok(contra()
        .args(["pretrain", "-q", "--no-eval", "-r"])
        .arg(&recipe)
        .arg("--out")
        .arg(&lit)
        .arg("--set")
        .arg(format!(
            "method.image_init={:?}",
            ssl.join("model.safetensors").display().to_string()
        ))
        .args(["--set", "method.freeze_image=true"]));
    let (ssl_weights, _) =
        contra::checkpoint::read_safetensors(&ssl.join("model.safetensors")).unwrap();
    let (lit_weights, _) =
        contra::checkpoint::read_safetensors(&lit.join("model.safetensors")).unwrap();
    let mut compared = 0;
    for (key, t) in &lit_weights {
        let Some(rest) = key.strip_prefix("image.") else {
            continue;
        };
        let (_, source) = ssl_weights
            .iter()
            .find(|(k, _)| k.ends_with(&format!("encoder.{rest}")))
            .unwrap_or_else(|| panic!("{key} not in the SimCLR model"));
        assert_eq!(t.data, source.data, "{key} moved");
        compared += 1;
    }
    assert!(compared > 8, "{compared}");
    // `contra info` tells where the emoji and the templates are.
    let root = dir.join("data-root");
    std::fs::create_dir_all(root.join("emoji-datasource-twitter")).unwrap();
    std::fs::write(root.join("emoji-datasource-twitter/emoji.json"), "[]").unwrap();
    let out = ok(contra().args(["info"]).env("CONTRA_DATA", &root));
    assert!(
        out.contains(&format!(
            "emoji-datasource-twitter: {}",
            root.join("emoji-datasource-twitter").display()
        )) && out.contains("clip-benchmark templates: not found"),
        "{out}"
    );
    // Recipes are checked: CLIP needs its text tower, and captions need CLIP.
    let text_table = format!("[text]\npath = {:?}\n", tiny_bert().display().to_string());
    let bad_recipe = dir.join("bad.toml");
    let without_text = std::fs::read_to_string(&recipe)
        .unwrap()
        .replace(&text_table, "");
    std::fs::write(&bad_recipe, without_text).unwrap();
    let o = contra()
        .args(["pretrain", "-r"])
        .arg(&bad_recipe)
        .output()
        .unwrap();
    assert_clean_failure(&o, &["text", "clip"]);
    let simclr = std::fs::read_to_string(&recipe).unwrap().replace(
        "kind = \"clip\"\ndim = 16\nfreeze_text = true",
        "kind = \"simclr\"",
    );
    std::fs::write(&bad_recipe, simclr).unwrap();
    let o = contra()
        .args(["pretrain", "-r"])
        .arg(&bad_recipe)
        .output()
        .unwrap();
    assert_clean_failure(&o, &["method.kind", "captions", "clip"]);
}

/// `contra pretrain --data DIR` trains on one's own folder without a recipe, says what it
/// found, and evaluates on held-out images (never on the training images unless asked, and
/// then says so); a UCR set folder trains TS2Vec.
#[test]
fn pretrain_on_a_folder_needs_no_recipe_and_holds_out_test_images() {
    let dir = tmp("own-folder");
    let photos = dir.join("photos");
    let colours: [(&str, [u8; 3]); 4] = [
        ("apples", [220, 30, 30]),
        ("leaves", [30, 200, 40]),
        ("sky", [40, 60, 230]),
        ("sand", [230, 210, 120]),
    ];
    for (class, rgb) in colours {
        std::fs::create_dir_all(photos.join(class)).unwrap();
        for i in 0..20 {
            square_png(&photos.join(format!("{class}/{i}.png")), rgb, i);
        }
    }
    std::fs::write(photos.join(".DS_Store"), b"junk").unwrap();
    let run = |extra: &[&str]| {
        let o = contra()
            .args(["pretrain", "-q", "--data"])
            .arg(&photos)
            .arg("--out")
            .arg(dir.join("run"))
            .args(["--set", "train.epochs=1"])
            .args(extra)
            .output()
            .unwrap();
        let (stdout, stderr) = text(&o);
        assert!(o.status.success(), "{stderr}");
        (stdout, stderr)
    };
    let (stdout, stderr) = run(&[]);
    assert!(
        stderr.contains("80 images in 4 classes (apples, leaves, sand, sky)")
            && stderr.contains("batch 64"),
        "{stderr}"
    );
    assert!(stdout.contains("evaluation on 16 test images"), "{stdout}");
    // The model keeps the class map.
    let model = std::fs::read(dir.join("run/model.safetensors")).unwrap();
    let header = String::from_utf8_lossy(&model[..4096.min(model.len())]);
    assert!(
        header.contains(r#""contra.classes":"[\"apples\",\"leaves\",\"sand\",\"sky\"]""#),
        "{header}"
    );
    // The run lists its split: 16 held-out files, 4 of each class, none also training.
    let split = std::fs::read_to_string(dir.join("run/split.csv")).unwrap();
    let rows: Vec<(&str, &str)> = split
        .lines()
        .skip(1)
        .map(|l| l.split_once(',').unwrap())
        .collect();
    let test: Vec<&str> = rows.iter().filter(|r| r.0 == "test").map(|r| r.1).collect();
    assert_eq!((rows.len(), test.len()), (80, 16), "{split}");
    assert!(test.iter().filter(|t| t.starts_with("sky/")).count() == 4);
    assert!(
        rows.iter()
            .filter(|r| r.0 == "train")
            .all(|r| !test.contains(&r.1))
    );
    // Streamed from the files (as a folder larger than memory is), the run trains too.
    let (stdout, stderr) = run(&["--set", "data.stream=true"]);
    assert!(
        stderr.contains("read from their files as used")
            && stdout.contains("evaluation on 16 test images"),
        "{stderr}"
    );
    // Embeddings and search results name each image's file.
    ok(contra()
        .args(["embed", "-m"])
        .arg(dir.join("run/model.safetensors"))
        .arg("--out")
        .arg(dir.join("index")));
    let out = ok(contra()
        .args(["search", "--json", "--id", "0", "-k", "3", "--index"])
        .arg(dir.join("index/embeddings.safetensors")));
    let hits: serde_json::Value = serde_json::from_str(&out).unwrap();
    for h in hits.as_array().unwrap() {
        let item = h["item"].as_str().unwrap();
        assert!(
            item.ends_with(".png") && photos.join(item).is_file(),
            "{item}"
        );
    }
    let (stdout, _) = run(&["--set", "data.train_fraction=1"]);
    assert!(
        stdout.contains("evaluation on 80 training images (no held-out test split"),
        "{stdout}"
    );
    let o = contra()
        .args(["pretrain", "--data"])
        .arg(dir.join("missing"))
        .output()
        .unwrap();
    assert_clean_failure(&o, &["missing", "not a folder"]);
    if have_data("ucr/GunPoint/GunPoint_TRAIN.ts") {
        let ucr = PathBuf::from(std::env::var_os("CONTRA_DATA").unwrap()).join("ucr/GunPoint");
        let o = contra()
            .args(["pretrain", "-q", "--no-eval", "--data"])
            .arg(&ucr)
            .arg("--out")
            .arg(dir.join("ucr-run"))
            .args(["--set", "train.steps=2"])
            .output()
            .unwrap();
        let (_, stderr) = text(&o);
        assert!(
            o.status.success() && stderr.contains("the UCR/UEA set GunPoint"),
            "{stderr}"
        );
    }
}

/// An index names its model relative to itself: a run folder moved together with its index
/// still answers an image query.
#[test]
fn a_moved_run_folder_keeps_its_index_working() {
    let dir = tmp("moved");
    let project = dir.join("project");
    std::fs::create_dir_all(&project).unwrap();
    let recipe = small_recipe(&project, 1);
    let run = project.join("run");
    ok(contra()
        .args(["pretrain", "-q", "--no-eval", "-r"])
        .arg(&recipe)
        .arg("--out")
        .arg(&run));
    ok(contra()
        .args(["embed", "-m"])
        .arg(run.join("model.safetensors"))
        .arg("--out")
        .arg(project.join("index")));
    square_png(&dir.join("query.png"), [200, 200, 200], 1);
    let moved = dir.join("elsewhere");
    std::fs::rename(&project, &moved).unwrap();
    let out = ok(contra()
        .args(["search", "--json", "-k", "3", "--image"])
        .arg(dir.join("query.png"))
        .arg("--index")
        .arg(moved.join("index/embeddings.safetensors")));
    let hits: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(hits.as_array().unwrap().len(), 3);
}

/// Embedding and the few-label table print progress lines as training does, and `-q` (any
/// command) silences them.
#[test]
fn long_steps_print_progress_unless_quiet() {
    let dir = tmp("progress");
    let recipe = small_recipe(&dir, 1);
    let run = dir.join("run");
    ok(contra()
        .args(["pretrain", "-q", "--no-eval", "-r"])
        .arg(&recipe)
        .arg("--out")
        .arg(&run));
    let embed = |quiet: bool| {
        let mut c = contra();
        c.env("CONTRA_PROGRESS_AFTER", "0")
            .args(["embed", "--split", "test", "-m"])
            .arg(run.join("model.safetensors"))
            .arg("--out")
            .arg(dir.join("index"));
        if quiet {
            c.arg("-q");
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", text(&o).1);
        text(&o).1
    };
    let loud = embed(false);
    assert!(
        loud.contains("embedding 360/360 images ("),
        "no progress line: {loud}"
    );
    assert!(!embed(true).contains("embedding 360/360"));
    let o = contra()
        .env("CONTRA_PROGRESS_AFTER", "0")
        .args(["eval", "fewshot", "--labels", "2", "--seeds", "1", "-m"])
        .arg(run.join("model.safetensors"))
        .output()
        .unwrap();
    let (_, stderr) = text(&o);
    assert!(
        o.status.success() && stderr.contains("kNN") && stderr.contains("accuracy"),
        "{stderr}"
    );
    let o = contra()
        .args([
            "eval", "fewshot", "-q", "--labels", "2", "--seeds", "1", "-m",
        ])
        .arg(run.join("model.safetensors"))
        .output()
        .unwrap();
    let (_, stderr) = text(&o);
    assert!(
        o.status.success() && !stderr.contains("accuracy"),
        "{stderr}"
    );
}
