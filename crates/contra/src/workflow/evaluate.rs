//! Evaluations of a trained model, each beside the same protocol on the raw inputs, for any
//! modality: the comparison printed after training and by `contra eval knn|linear`, anomaly
//! detection, retrieval, and the few-label table with fine-tuning.

use super::loaded::Loaded;
use super::modality::Modality;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::eval::anomaly::{Detection, DetectionMetrics, Scorer, detect};
use crate::eval::fewshot::{self, Budget, Representation, Trainer};
use crate::eval::finetune::{FinetuneConfig, finetune, predict};
use crate::eval::linear::{self, ProbeConfig};
use crate::eval::ranges::{StepMetrics, step_scores};
use crate::eval::report::{self, Protocols, Row};
use crate::eval::retrieval::{self, RetrievalReport};
use crate::features::Features;
use crate::train::TrainedFile;
use serde::Serialize;
use std::path::Path;

/// The protocols' rows on the learned and the raw features.
pub fn compare<M: Modality>(l: &Loaded<M>, which: Protocols) -> Result<Vec<Row>> {
    let (learned, raw) = l.embeddings();
    compare_embeddings(l, &learned, &raw, which)
}

/// The same on features already computed (`l.embeddings()`).
pub fn compare_embeddings<M: Modality>(
    l: &Loaded<M>,
    learned: &report::Embeddings,
    raw: &report::Embeddings,
    which: Protocols,
) -> Result<Vec<Row>> {
    let (yl, yt, classes) = l.labels("evaluation")?;
    report::compare(
        learned,
        raw,
        yl,
        yt,
        classes,
        &l.recipe.eval,
        which,
        l.recipe.seed,
        &l.device,
    )
}

/// What the evaluation after training found.
#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Evaluation {
    /// Accuracy rows of the learned features beside the raw inputs.
    Accuracy {
        rows: Vec<Row>,
        raw: String,
    },
    Anomaly(Box<AnomalyReport>),
    /// No labels to evaluate with.
    Nothing,
}

impl Evaluation {
    /// As printed by `contra pretrain`.
    pub fn to_text(&self) -> String {
        match self {
            Evaluation::Accuracy { rows, raw } => report::table(rows, raw),
            Evaluation::Anomaly(a) => a.table.clone(),
            Evaluation::Nothing => String::new(),
        }
    }
}

/// The evaluation that follows pretraining: anomaly detection when the run trains on normal
/// items only (`data.train_classes`, windows of streams), else kNN on all labels (and the
/// RBF SVM for series) and kNN and the linear probe with the recipe's few labels per class.
pub fn after_training<M: Modality>(l: &Loaded<M>) -> Result<Evaluation> {
    if let Some(normal) = l.recipe.data.default_normal_classes() {
        return Ok(Evaluation::Anomaly(Box::new(anomaly(
            l,
            &normal,
            Detector::Method,
        )?)));
    }
    if l.splits.train.labels().is_none() || l.splits.test.labels().is_none() {
        return Ok(Evaluation::Nothing);
    }
    let rows = compare(
        l,
        Protocols {
            knn: true,
            linear: false,
            svm: M::svm(),
            few_label: true,
        },
    )?;
    Ok(Evaluation::Accuracy {
        rows,
        raw: M::raw_name().into(),
    })
}

/// Anomaly detection of the test items, fitted on the normal training items.
#[derive(Debug, Serialize)]
pub struct AnomalyReport {
    pub normal_classes: Vec<u32>,
    pub normal_training_items: usize,
    pub test_items: usize,
    pub anomalous_test_items: Option<usize>,
    pub scorer: String,
    pub learned: Option<DetectionMetrics>,
    pub raw: Option<DetectionMetrics>,
    /// Uniform random scores (seeded by the recipe): what chance reaches on these items.
    pub random: Option<DetectionMetrics>,
    /// Windows of labelled streams scored per time step: learned, raw, random.
    pub per_step: Option<[StepMetrics; 3]>,
    /// Every test item's learned score.
    #[serde(skip)]
    pub scores: Vec<f64>,
    #[serde(skip)]
    pub anomalous: Option<Vec<bool>>,
    /// As printed.
    #[serde(skip)]
    pub table: String,
}

/// The normal training items (labels in `normal`, or all of an unlabelled training split)
/// and, where the test items have labels, which of them are anomalous.
pub fn normal_split<M: Modality>(
    l: &Loaded<M>,
    normal: &[u32],
) -> Result<(M::Dataset, Option<Vec<bool>>)> {
    let train = &l.splits.train;
    let rows: Vec<usize> = (0..train.len())
        .filter(|&i| train.labels().is_none_or(|y| normal.contains(&y[i])))
        .collect();
    if rows.is_empty() {
        return Err(Error::config(
            "--normal-class",
            format!("no training item has class {normal:?}"),
        ));
    }
    let anomalous = l
        .splits
        .test
        .labels()
        .map(|y| y.iter().map(|c| !normal.contains(c)).collect());
    // Only the normal training items are embedded: they are all the detector is fitted on.
    Ok((train.subset(&rows), anomalous))
}

/// How the learned side of an anomaly evaluation scores.
#[derive(Clone, Copy, Debug)]
pub enum Detector {
    /// The method's own detector where it has one (CSI), else kNN (k = 5) in the embedding.
    Method,
    /// Distances in the embedding, whatever the method.
    Embedding(Scorer),
}

/// Fit the detector on the normal training items (labels in `normal`, or all of an unlabelled
/// training split) in the learned and the raw space, and score every test item. The raw side
/// always scores by distance (kNN with k = 5 beside a method's own detector).
pub fn anomaly<M: Modality>(
    l: &Loaded<M>,
    normal: &[u32],
    detector: Detector,
) -> Result<AnomalyReport> {
    let scorer = match detector {
        Detector::Embedding(s) => s,
        Detector::Method => Scorer::Knn { k: 5 },
    };
    let test = &l.splits.test;
    let (normal_items, anomalous) = normal_split(l, normal)?;
    let normal_count = normal_items.len();
    let run = |normal: Features, test: &Features| -> Result<Detection> {
        detect(&normal, test, anomalous.as_deref(), scorer, &l.device)
    };
    let distance = match scorer {
        Scorer::Knn { k } => format!("kNN (k={k})"),
        Scorer::Mahalanobis { .. } => "Mahalanobis distance".into(),
    };
    let own = match detector {
        Detector::Method => {
            M::own_anomaly_scores(&l.model, &normal_items, test, &l.prep, &l.device)?
        }
        Detector::Embedding(_) => None,
    };
    let (learned, method) = match own {
        Some((name, scores)) => (
            Detection::of(scores, anomalous.as_deref())?,
            format!("{name} (raw inputs: {distance})"),
        ),
        None => (run(l.embed(&normal_items), &l.embed(test))?, distance),
    };
    let raw = run(l.raw(&normal_items), &l.raw(test))?;
    let items = M::items(&l.recipe);
    let count = anomalous.as_ref().map(|a| a.iter().filter(|&&x| x).count());
    let mut table = format!(
        "anomaly detection of {} test {items} ({} anomalous), normal class {normal:?}, by {method} to {} normal training {items}:\n",
        test.len(),
        count.map_or("?".into(), |c| c.to_string()),
        normal_count
    );
    let mut rng = crate::rng::Rng::derive(l.recipe.seed, &[0x5241_4e44]);
    let random_scores: Vec<f64> = (0..test.len()).map(|_| rng.range(0.0, 1.0)).collect();
    let random = anomalous
        .as_deref()
        .map(|y| DetectionMetrics::of(&random_scores, y, 0))
        .transpose()?;
    let per_step = match (&l.splits.test_steps, &l.splits.test_origins, &l.recipe.data) {
        (Some(steps), Some(origins), crate::data::locate::DataSpec::Csv(spec)) => {
            let of = |scores: &[f64]| per_step_metrics(steps, origins, scores, spec.window);
            Some([of(&learned.scores)?, of(&raw.scores)?, of(&random_scores)?])
        }
        _ => None,
    };
    match (&learned.metrics, &raw.metrics, &random) {
        (Some(a), Some(b), Some(r)) => table.push_str(&detection_table(a, b, r, M::raw_name())),
        _ => table.push_str("(the test items have no labels: scores only)\n"),
    }
    if let (Some(m), Some(steps)) = (&per_step, &l.splits.test_steps) {
        table.push_str(&step_table(m, steps, M::raw_name()));
    }
    Ok(AnomalyReport {
        normal_classes: normal.to_vec(),
        normal_training_items: normal_count,
        test_items: test.len(),
        anomalous_test_items: count,
        scorer: method,
        learned: learned.metrics,
        raw: raw.metrics,
        random,
        per_step,
        scores: learned.scores,
        anomalous,
        table,
    })
}

/// Per-step metrics of window scores: each step of each labelled test stream scored by the
/// highest of the windows covering it (steps no window covers are left out), all streams'
/// steps in one sequence.
fn per_step_metrics(
    steps: &[crate::data::StreamSteps],
    origins: &[crate::data::WindowOrigin],
    scores: &[f64],
    window: usize,
) -> Result<StepMetrics> {
    let (mut all_scores, mut all_labels) = (Vec::new(), Vec::new());
    for s in steps {
        let (starts, own): (Vec<usize>, Vec<f64>) = origins
            .iter()
            .zip(scores)
            .filter(|(o, _)| o.stream == s.stream && o.first_row >= s.first_row)
            .map(|(o, &v)| (o.first_row - s.first_row, v))
            .unzip();
        let per_step = step_scores(s.anomalous.len(), &starts, &own, window);
        for (v, &a) in per_step.iter().zip(&s.anomalous) {
            if let Some(v) = v {
                all_scores.push(*v);
                all_labels.push(a);
            }
        }
    }
    StepMetrics::of(&all_scores, &all_labels, window)
}

/// The per-step table: learned, raw and random window scores.
fn step_table(m: &[StepMetrics; 3], steps: &[crate::data::StreamSteps], raw: &str) -> String {
    let total: usize = steps.iter().map(|s| s.anomalous.len()).sum();
    let anomalous: usize = steps
        .iter()
        .map(|s| s.anomalous.iter().filter(|&&a| a).count())
        .sum();
    let mut t = format!(
        "per time step ({total} steps, {anomalous} anomalous; a step scores its windows' highest):\n{:<34}{:>10}{:>14}{:>15}\n",
        "metric", "learned", raw, "random scores"
    );
    let col = |f: fn(&StepMetrics) -> f64| [f(&m[0]), f(&m[1]), f(&m[2])];
    for (name, v) in [
        ("AUROC", col(|m| m.auroc)),
        ("AUPRC", col(|m| m.average_precision)),
        ("F1 point-adjusted (oracle)", col(|m| m.f1_point_adjusted)),
        ("F1-PA%K area, K 0-100 (oracle)", col(|m| m.f1_pa_k_area)),
        ("VUS-ROC", col(|m| m.vus_roc)),
        ("VUS-PR", col(|m| m.vus_pr)),
    ] {
        t.push_str(&format!(
            "{name:<34}{:>10.4}{:>14.4}{:>15.4}\n",
            v[0], v[1], v[2]
        ));
    }
    t
}

/// AUROC and AUPRC (with 95% bootstrap intervals) and the oracle's best F1 of the learned
/// features beside a baseline and random scores, one line each.
fn detection_table(
    learned: &DetectionMetrics,
    baseline: &DetectionMetrics,
    random: &DetectionMetrics,
    baseline_name: &str,
) -> String {
    let columns = [learned, baseline, random];
    let mut table = format!(
        "{:<27}{:>22}{:>22}{:>22}\n",
        "metric (95% interval)", "learned", baseline_name, "random scores"
    );
    let with_interval = |v: f64, [lo, hi]: [f64; 2]| format!("{v:.4} ({lo:.3}-{hi:.3})");
    let row = |name: &str, cell: &dyn Fn(&DetectionMetrics) -> String| {
        let cells: Vec<String> = columns.iter().map(|m| format!("{:>22}", cell(m))).collect();
        format!("{name:<27}{}\n", cells.concat())
    };
    table.push_str(&row("AUROC", &|m| with_interval(m.auroc, m.auroc_interval)));
    table.push_str(&row("AUPRC", &|m| {
        with_interval(m.average_precision, m.average_precision_interval)
    }));
    table.push_str(&row("best F1 (oracle threshold)", &|m| {
        format!("{:.4}", m.best_f1)
    }));
    table
}

/// Every test item's anomaly score as CSV: `index,[stream,first_row,timestamp,]label,score,
/// anomalous` (label and anomalous empty where unknown; the place of stream windows).
pub fn write_scores<M: Modality>(l: &Loaded<M>, report: &AnomalyReport, path: &Path) -> Result<()> {
    let origins = l.splits.test_origins.as_deref();
    let labels = l.splits.test.labels();
    let mut csv = String::from("index,");
    if origins.is_some() {
        csv.push_str("stream,first_row,timestamp,");
    }
    csv.push_str("label,score,anomalous\n");
    for (i, s) in report.scores.iter().enumerate() {
        csv.push_str(&format!("{i},"));
        if let Some(o) = origins {
            let o = &o[i];
            let time = o.timestamp.as_deref().unwrap_or("");
            csv.push_str(&format!("{},{},{time},", o.stream, o.first_row));
        }
        let label = labels.map_or(String::new(), |y| y[i].to_string());
        let flag = report
            .anomalous
            .as_ref()
            .map_or(String::new(), |a| (a[i] as u8).to_string());
        csv.push_str(&format!("{label},{s},{flag}\n"));
    }
    crate::checkpoint::write_atomic(path, csv.as_bytes())
}

/// Retrieval of the training items for each test item, learned and raw.
#[derive(Debug, Serialize)]
pub struct Retrieval {
    pub learned: RetrievalReport,
    pub raw: RetrievalReport,
    pub references: usize,
}

impl Retrieval {
    pub fn to_text(&self, raw_name: &str) -> String {
        let (a, b) = (&self.learned, &self.raw);
        let mut s = format!(
            "retrieval of {} training items for {} test queries (cosine):\n",
            self.references, a.queries
        );
        s += &format!("{:<22}{:>10}{:>13}\n", "metric", "learned", raw_name);
        s += &format!(
            "{:<22}{:>10.4}{:>13.4}\n",
            "precision@1", a.precision_at_1, b.precision_at_1
        );
        for ((k, x), (_, y)) in a.recall_at_k.iter().zip(&b.recall_at_k) {
            s += &format!("{:<22}{x:>10.4}{y:>13.4}\n", format!("recall@{k}"));
        }
        s += &format!("{:<22}{:>10.4}{:>13.4}\n", "MAP@R", a.map_at_r, b.map_at_r);
        s += &format!(
            "{:<22}{:>10.4}{:>13.4}\n",
            "mean reciprocal rank", a.mean_reciprocal_rank, b.mean_reciprocal_rank
        );
        s
    }
}

/// P@1, R@k, MAP@R and MRR of the test items as queries against the training items.
pub fn retrieval<M: Modality>(l: &Loaded<M>, ks: &[usize]) -> Result<Retrieval> {
    let (yl, yt, _) = l.labels("retrieval metrics")?;
    if ks.contains(&0) {
        return Err(Error::config("--k", "every k must be at least 1"));
    }
    let (learned, raw) = l.embeddings();
    let run = |e: &report::Embeddings| {
        retrieval::evaluate(&e.test, yt, &e.train, yl, false, ks, &l.device)
    };
    Ok(Retrieval {
        learned: run(&learned),
        raw: run(&raw),
        references: l.splits.train.len(),
    })
}

/// How the few-label table fine-tunes: steps (0 leaves fine-tuning out), batch and learning
/// rates.
#[derive(Clone, Debug)]
pub struct FinetuneSettings {
    pub steps: usize,
    pub batch_size: usize,
    /// The classifier's learning rate, and the encoder's when trained from scratch.
    pub lr: f64,
    /// The pretrained encoder's learning rate while it is fine-tuned.
    pub encoder_lr: f64,
}

impl Default for FinetuneSettings {
    fn default() -> Self {
        Self {
            steps: 300,
            batch_size: 64,
            lr: 1e-3,
            encoder_lr: 1e-4,
        }
    }
}

/// The few-label table: for each budget and seed, kNN and the linear probe (and the SVM for
/// series) on the pretrained encoder, a randomly initialised one and the raw inputs; and the
/// pretrained encoder fine-tuned (its classifier starting as the probe, LP-FT) beside the
/// same encoder trained from scratch. `progress` sees every cell as it is done.
pub fn fewshot_table<M: Modality>(
    l: &Loaded<M>,
    budgets: Vec<Budget>,
    seeds: u64,
    tune: &FinetuneSettings,
    progress: impl FnMut(&fewshot::Cell),
) -> Result<fewshot::Table> {
    if budgets.is_empty() {
        return Err(Error::config("--labels", "name at least one label budget"));
    }
    let (yl, yt, classes) = l.labels("few-label evaluation")?;
    let (train, test) = (&l.splits.train, &l.splits.test);
    let (learned, raw) = l.embeddings();
    // A randomly initialised encoder of the same architecture, frozen.
    let random = M::random_encoder(
        &l.recipe,
        train,
        &l.prep,
        l.recipe.seed ^ 0x5241_4e44,
        &l.device,
    )?;
    let random = report::Embeddings {
        train: M::embed_with(&random, train, &l.prep, &l.device),
        test: M::embed_with(&random, test, &l.prep, &l.device),
    };
    let reps = [
        Representation {
            name: "pretrained".into(),
            train: &learned.train,
            test: &learned.test,
        },
        Representation {
            name: "random init".into(),
            train: &random.train,
            test: &random.test,
        },
        Representation {
            name: M::raw_name().into(),
            train: &raw.train,
            test: &raw.test,
        },
    ];
    let probe = ProbeConfig {
        l2_grid: l.recipe.eval.probe_l2.clone(),
        ..Default::default()
    };
    let settings = fewshot::Settings {
        budgets,
        seeds,
        knn_k: l.recipe.eval.knn_k,
        knn_temperature: l.recipe.eval.knn_temperature,
        probe: probe.clone(),
        num_classes: classes,
        svm: M::svm(),
    };
    let ad = l.device.clone().autodiff();
    let test_inputs = M::finetune_inputs(test.clone(), &l.prep)?;
    let fit = |encoder: M::Encoder,
               rows: &[usize],
               y: &[u32],
               cfg: FinetuneConfig,
               head: Option<&linear::Probe>| {
        let inputs = M::finetune_inputs(train.subset(rows), &l.prep)?;
        let model = finetune(encoder, inputs, y, classes, head, &cfg, &ad)?;
        Ok(predict(&model, test_inputs.as_ref(), 256, &l.device))
    };
    let cfg = |seed, encoder_lr| FinetuneConfig {
        steps: tune.steps,
        batch_size: tune.batch_size,
        lr: tune.lr,
        encoder_lr,
        seed,
        ..Default::default()
    };
    // The pretrained weights, read anew on the training device for every fine-tuning.
    let file = match (&l.path, tune.steps) {
        (_, 0) => None,
        (Some(p), _) => Some(TrainedFile::read(p)?),
        (None, _) => {
            return Err(Error::other(
                "fine-tuning reads the pretrained weights from a model file; this model has none",
            ));
        }
    };
    let trainers: Vec<Trainer> = if tune.steps == 0 {
        Vec::new()
    } else {
        vec![
            Trainer {
                name: "pretrained".into(),
                run: Box::new(|rows: &[usize], y: &[u32], seed| {
                    let probe = linear::fit_selected(
                        &learned.train.select(rows),
                        y,
                        classes,
                        &ProbeConfig {
                            seed,
                            ..probe.clone()
                        },
                        &l.device,
                    );
                    let file = file.as_ref().expect("read above");
                    let encoder = M::into_encoder(M::read(file, train, &ad)?);
                    fit(encoder, rows, y, cfg(seed, tune.encoder_lr), Some(&probe))
                }),
            },
            Trainer {
                name: "from scratch".into(),
                run: Box::new(|rows: &[usize], y: &[u32], seed| {
                    let seed = l.recipe.seed ^ 0x5343_5241 ^ seed;
                    let encoder = M::random_encoder(&l.recipe, train, &l.prep, seed, &ad)?;
                    fit(encoder, rows, y, cfg(seed, tune.lr), None)
                }),
            },
        ]
    };
    fewshot::run(&settings, yl, yt, &reps, &trainers, &l.device, progress)
}
