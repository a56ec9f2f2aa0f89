//! The comparison contra prints after training and from `contra eval`: each protocol on the
//! learned embedding beside the same protocol on the raw inputs.

use super::fewshot;
use super::linear::ProbeConfig;
use super::{Features, accuracy, knn, linear};
use crate::error::Result;
use crate::recipe::EvalSpec;
use burn::prelude::Device;

/// Which protocols to run.
#[derive(Clone, Copy, Debug)]
pub struct Protocols {
    pub knn: bool,
    pub linear: bool,
    /// The RBF SVM on all labels, C by cross-validation (the TS2Vec protocol).
    pub svm: bool,
    /// kNN and the probe (and the SVM with `svm`) with `labels_per_class` labels, over seeds.
    pub few_label: bool,
}

/// One protocol's accuracy (mean, standard deviation over seeds; 0 for a single run).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Row {
    pub protocol: String,
    pub learned: (f64, f64),
    pub raw: (f64, f64),
}

/// Features of the training and the test split.
pub struct Embeddings {
    pub train: Features,
    pub test: Features,
}

/// Run the chosen protocols on both feature sets: trained on the training labels `yl`,
/// scored on the test labels `yt`.
#[allow(clippy::too_many_arguments)]
pub fn compare(
    learned: &Embeddings,
    pixels: &Embeddings,
    yl: &[u32],
    yt: &[u32],
    classes: usize,
    spec: &EvalSpec,
    which: Protocols,
    seed: u64,
    device: &Device,
) -> Result<Vec<Row>> {
    let probe = ProbeConfig {
        l2_grid: spec.probe_l2.clone(),
        ..Default::default()
    };
    let mut rows = Vec::new();
    let both = |f: &dyn Fn(&Embeddings) -> f64| (f(learned), f(pixels));
    if which.knn {
        let (a, b) = both(&|e| {
            accuracy(
                &knn::predict(
                    &e.train,
                    yl,
                    &e.test,
                    classes,
                    spec.knn_k,
                    spec.knn_temperature,
                    device,
                ),
                yt,
            )
        });
        rows.push(Row {
            protocol: format!("kNN (k={}, t={})", spec.knn_k, spec.knn_temperature),
            learned: (a, 0.0),
            raw: (b, 0.0),
        });
    }
    if which.linear {
        let (a, b) = both(&|e| {
            accuracy(
                &linear::fit_predict(&e.train, yl, &e.test, classes, &probe, device),
                yt,
            )
        });
        rows.push(Row {
            protocol: "linear probe, all labels".into(),
            learned: (a, 0.0),
            raw: (b, 0.0),
        });
    }
    if which.svm {
        let (a, b) = (
            svm_accuracy(learned, yl, yt, classes, seed)?,
            svm_accuracy(pixels, yl, yt, classes, seed)?,
        );
        rows.push(Row {
            protocol: "SVM (RBF, C by 5-fold CV)".into(),
            learned: (a, 0.0),
            raw: (b, 0.0),
        });
    }
    if which.few_label && !spec.labels_per_class.is_empty() {
        let settings = fewshot::Settings {
            budgets: spec
                .labels_per_class
                .iter()
                .map(|&n| fewshot::Budget::PerClass(n))
                .collect(),
            seeds: spec.seeds,
            knn_k: spec.knn_k,
            knn_temperature: spec.knn_temperature,
            probe: probe.clone(),
            num_classes: classes,
            svm: which.svm,
        };
        let reps = [
            fewshot::Representation {
                name: "learned".into(),
                train: &learned.train,
                test: &learned.test,
            },
            fewshot::Representation {
                name: "raw".into(),
                train: &pixels.train,
                test: &pixels.test,
            },
        ];
        let table = fewshot::run(&settings, yl, yt, &reps, &[], device, |_| {})?;
        for pair in table.cells.chunks_exact(2) {
            let (a, b) = (&pair[0], &pair[1]);
            rows.push(Row {
                protocol: format!(
                    "{}, {} labels ({} seeds)",
                    a.protocol,
                    a.budget.label(),
                    spec.seeds
                ),
                learned: a.accuracy,
                raw: b.accuracy,
            });
        }
    }
    Ok(rows)
}

fn svm_accuracy(e: &Embeddings, yl: &[u32], yt: &[u32], classes: usize, seed: u64) -> Result<f64> {
    let (model, _) = super::svm::fit_cross_validated(&e.train, yl, classes, seed)?;
    Ok(accuracy(&model.predict(&e.test), yt))
}

fn cell(v: (f64, f64)) -> String {
    if v.1 > 0.0 {
        format!("{:.4} ± {:.4}", v.0, v.1)
    } else {
        format!("{:.4}", v.0)
    }
}

/// A plain-text table of the rows, the baseline's column named `raw_name`.
pub fn table(rows: &[Row], raw_name: &str) -> String {
    let w = rows
        .iter()
        .map(|r| r.protocol.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let mut s = format!("{:<w$}  {:>17}  {:>17}\n", "protocol", "learned", raw_name);
    for r in rows {
        s += &format!(
            "{:<w$}  {:>17}  {:>17}\n",
            r.protocol,
            cell(r.learned),
            cell(r.raw)
        );
    }
    s
}
