//! Recipes: one TOML file that says what to train, on what, and how to evaluate it.
//!
//! Every table rejects unknown keys, and every value is checked before training starts, so a
//! typo is reported with its key and line instead of being silently ignored.

use crate::augment::series::{SeriesAugmentation, SeriesPipeline};
use crate::augment::{Augmentation, Pipeline, channel_stats};
use crate::data::ImageDataset;
use crate::data::locate::DataSpec;
use crate::encoders::EncoderSpec;
use crate::error::{Error, Result};
use crate::heads::ProjectionHeadSpec;
use crate::optim::OptimizerSpec;
use crate::optim::schedule::ScheduleSpec;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The recipe contra runs when none is given: SimCLR on the bundled 8x8 digits.
pub const DEFAULT_RECIPE: &str = include_str!("../../../recipes/default.toml");

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    #[serde(default = "default_name")]
    pub name: String,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub data: DataSpec,
    #[serde(default)]
    pub augment: AugmentSpec,
    #[serde(default)]
    pub encoder: EncoderSpec,
    #[serde(default)]
    pub head: ProjectionHeadSpec,
    #[serde(default)]
    pub method: MethodSpec,
    pub optimizer: OptimizerSpec,
    #[serde(default)]
    pub schedule: ScheduleSpec,
    #[serde(default)]
    pub train: TrainSpec,
    #[serde(default)]
    pub eval: EvalSpec,
}
fn default_name() -> String {
    "run".into()
}

/// `preset = "simclr"` (lightly's SimCLR views at the data's size, normalised with the
/// training set's statistics), or an explicit list of `[[augment.steps]]`; for time series
/// trained by an instance method (SimCLR, MoCo, ...), the list `[[augment.series]]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AugmentSpec {
    #[serde(default)]
    pub preset: Option<String>,
    /// Output size for the preset (defaults to the data's height).
    #[serde(default)]
    pub size: Option<usize>,
    #[serde(default)]
    pub steps: Vec<Augmentation>,
    /// Time series views: `{ op = "jitter", sigma = 0.03 }`, ... (see [`SeriesAugmentation`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<SeriesAugmentation>,
}

impl Default for AugmentSpec {
    fn default() -> Self {
        Self {
            preset: Some("simclr".into()),
            size: None,
            steps: Vec::new(),
            series: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MethodSpec {
    /// `simclr`, `moco` (MoCo v2), `moco_v3`, `nnclr`, or from labels `supcon` or `triplet`.
    #[serde(default = "simclr")]
    pub kind: String,
    #[serde(default = "default_temperature")]
    pub temperature: f32,
    /// SimCLR: `nt_xent`, or the decoupled `dcl` or `dclw` (positive left out of the
    /// denominator).
    #[serde(default = "nt_xent")]
    pub loss: String,
    /// DCLW: width of the von Mises-Fisher weighting of positives.
    #[serde(default = "default_dclw_sigma")]
    pub dclw_sigma: f32,
    /// MoCo: number of past keys kept as negatives; NNCLR: size of the support set.
    #[serde(default = "default_queue")]
    pub queue_size: usize,
    /// MoCo: key-encoder momentum.
    #[serde(default = "default_momentum")]
    pub momentum: f64,
    /// MoCo: `constant`, or `cosine` to raise the momentum to 1 over training.
    #[serde(default = "constant")]
    pub momentum_schedule: String,
    /// Triplet: margin (FaceNet: 0.2 on normalised embeddings).
    #[serde(default = "default_margin")]
    pub margin: f32,
    /// Triplet: `batch_hard`, `batch_all`, `semi_hard`, `hard` or `easy`.
    #[serde(default = "batch_hard")]
    pub miner: String,
    /// Triplet: `euclidean` or `cosine` (1 - cosine similarity).
    #[serde(default = "euclidean")]
    pub distance: String,
    /// Triplet: use min(d(a,n), d(p,n)) as the negative distance.
    #[serde(default)]
    pub swap: bool,
    /// Triplet: log(1 + exp(d(a,p) - d(a,n))) instead of the hinge.
    #[serde(default)]
    pub soft_margin: bool,
    /// Triplet: L2-normalise embeddings before Euclidean distances.
    #[serde(default = "yes")]
    pub normalize: bool,
    /// TS2Vec: weight of the instance term of the hierarchical loss (the temporal term gets
    /// the rest).
    #[serde(default = "half")]
    pub alpha: f32,
    /// TS2Vec: the first pooling scale with a temporal term; crops share at least
    /// `2^(temporal_unit + 1)` steps.
    #[serde(default)]
    pub temporal_unit: usize,
}
fn half() -> f32 {
    0.5
}
fn yes() -> bool {
    true
}
fn default_margin() -> f32 {
    0.2
}
fn batch_hard() -> String {
    "batch_hard".into()
}
fn euclidean() -> String {
    "euclidean".into()
}
fn nt_xent() -> String {
    "nt_xent".into()
}
fn default_dclw_sigma() -> f32 {
    0.5
}
fn default_queue() -> usize {
    65_536
}
fn default_momentum() -> f64 {
    0.999
}
fn constant() -> String {
    "constant".into()
}
fn simclr() -> String {
    "simclr".into()
}
fn default_temperature() -> f32 {
    0.5
}

impl Default for MethodSpec {
    fn default() -> Self {
        Self {
            kind: simclr(),
            temperature: default_temperature(),
            loss: nt_xent(),
            dclw_sigma: default_dclw_sigma(),
            queue_size: default_queue(),
            momentum: default_momentum(),
            momentum_schedule: constant(),
            margin: default_margin(),
            miner: batch_hard(),
            distance: euclidean(),
            swap: false,
            soft_margin: false,
            normalize: true,
            alpha: half(),
            temporal_unit: 0,
        }
    }
}

impl MethodSpec {
    /// Whether the method trains from labels.
    pub fn needs_labels(&self) -> bool {
        // (TS2Vec and the image methods but SupCon and triplet learn without.)
        matches!(self.kind.as_str(), "supcon" | "triplet")
    }

    /// The triplet miner named by `miner`.
    pub fn triplet_miner(&self) -> Result<crate::losses::Miner> {
        use crate::losses::Miner;
        let margin = self.margin;
        Ok(match self.miner.as_str() {
            "batch_hard" => Miner::BatchHard,
            "batch_all" => Miner::BatchAll,
            "semi_hard" => Miner::SemiHard { margin },
            "hard" => Miner::Hard { margin },
            "easy" => Miner::Easy { margin },
            other => {
                return Err(Error::config(
                    "method.miner",
                    format!(
                        "unknown miner `{other}`; expected batch_hard, batch_all, semi_hard, hard or easy"
                    ),
                ));
            }
        })
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    #[serde(default = "default_epochs")]
    pub epochs: u64,
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Augmentation worker threads.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Batches prepared ahead of the trainer.
    #[serde(default = "default_prefetch")]
    pub prefetch: usize,
    /// Class-balanced batches of `batch_size / per_class` classes with `per_class` items each
    /// (P x K sampling, for metric learning); 0 for a plain shuffle.
    #[serde(default)]
    pub per_class: usize,
    /// Semi-supervised SupCon: keep the labels of only this many training items per class
    /// (chosen with the seed); the rest train unlabelled. 0: every label.
    #[serde(default)]
    pub labelled_per_class: usize,
    /// Start from the encoder and projection head of this model file (a run of any method
    /// with the same architecture) instead of a random initialisation.
    #[serde(default)]
    pub init: Option<PathBuf>,
    /// Every N steps, log alignment, uniformity, effective rank and mean positive/negative
    /// cosine of the backbone features of two fixed views of the first 512 training images
    /// (`"diagnostics"` records in metrics.jsonl; a falling effective rank warns of collapse);
    /// 0: never.
    #[serde(default)]
    pub diagnose_every: u64,
    /// Online kNN monitor: after every epoch, the weighted kNN accuracy (eval.knn_k,
    /// eval.knn_temperature) of the first N labelled training items, the last fifth of them
    /// classified by the first four fifths (`"knn_accuracy"` records in metrics.jsonl);
    /// 0: off.
    #[serde(default)]
    pub knn_monitor: usize,
    /// Train for this many steps (rounded up to whole epochs) instead of `epochs`, as TS2Vec
    /// budgets its runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<u64>,
    /// Write a checkpoint every N steps (and at the end of every epoch); 0: epochs only.
    #[serde(default)]
    pub checkpoint_every: u64,
    /// Where the run's files go (relative to the working directory).
    #[serde(default)]
    pub out: Option<PathBuf>,
    /// `cpu`, `cuda:N`, `tch-cpu` or `tch-cuda:N`.
    #[serde(default = "default_device")]
    pub device: String,
}
fn default_epochs() -> u64 {
    10
}
fn default_batch() -> usize {
    256
}
fn default_workers() -> usize {
    1
}
fn default_prefetch() -> usize {
    4
}
fn default_device() -> String {
    "cpu".into()
}

impl Default for TrainSpec {
    fn default() -> Self {
        Self {
            epochs: default_epochs(),
            batch_size: default_batch(),
            workers: default_workers(),
            prefetch: default_prefetch(),
            per_class: 0,
            labelled_per_class: 0,
            init: None,
            diagnose_every: 0,
            knn_monitor: 0,
            steps: None,
            checkpoint_every: 0,
            out: None,
            device: default_device(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EvalSpec {
    #[serde(default = "default_k")]
    pub knn_k: usize,
    #[serde(default = "default_knn_t")]
    pub knn_temperature: f32,
    /// Few-label evaluations: N labels per class.
    #[serde(default = "default_few")]
    pub labels_per_class: Vec<usize>,
    /// Seeds averaged for each few-label setting.
    #[serde(default = "default_seeds")]
    pub seeds: u64,
    /// Candidate L2 strengths of the linear probe, one chosen by validation accuracy
    /// (default 1e-6 ... 1, one per decade).
    #[serde(default = "crate::eval::linear::default_l2_grid")]
    pub probe_l2: Vec<f64>,
    /// Settings of the SGD probe that the L-BFGS probe replaced: still read, so that older
    /// recipes and model files load, and ignored.
    #[serde(default, skip_serializing)]
    pub probe_epochs: Option<usize>,
    #[serde(default, skip_serializing)]
    pub probe_lr: Option<f64>,
    #[serde(default, skip_serializing)]
    pub probe_weight_decay: Option<f64>,
}
fn default_k() -> usize {
    200
}
fn default_knn_t() -> f32 {
    0.1
}
fn default_few() -> Vec<usize> {
    vec![10]
}
fn default_seeds() -> u64 {
    5
}

impl Default for EvalSpec {
    fn default() -> Self {
        Self {
            knn_k: default_k(),
            knn_temperature: default_knn_t(),
            labels_per_class: default_few(),
            seeds: default_seeds(),
            probe_l2: crate::eval::linear::default_l2_grid(),
            probe_epochs: None,
            probe_lr: None,
            probe_weight_decay: None,
        }
    }
}

impl Recipe {
    /// Parse recipe text; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Self> {
        let r: Recipe = toml::from_str(text)
            .map_err(|e| Error::format(origin, format!("invalid recipe: {e}")))?;
        r.validate()?;
        Ok(r)
    }

    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, path)
    }

    pub fn default_recipe() -> Self {
        Self::parse(DEFAULT_RECIPE, Path::new("<built-in recipes/default.toml>"))
            .expect("the built-in recipe is valid")
    }

    pub fn validate(&self) -> Result<()> {
        self.encoder.validate()?;
        self.optimizer.validate()?;
        if !matches!(
            self.method.kind.as_str(),
            "simclr" | "moco" | "moco_v3" | "nnclr" | "supcon" | "triplet" | "ts2vec"
        ) {
            return Err(Error::config(
                "method.kind",
                format!(
                    "unknown method `{}`; expected simclr, moco, moco_v3, nnclr, supcon, triplet or ts2vec",
                    self.method.kind
                ),
            ));
        }
        let series = self.data.is_series();
        let ts2vec = self.method.kind == "ts2vec";
        if series != (self.encoder.kind == "ts2vec") || (ts2vec && !series) {
            return Err(Error::config(
                if ts2vec {
                    "method.kind"
                } else {
                    "encoder.kind"
                },
                "time series (data.source = \"ucr\" or \"csv\") use encoder.kind = \"ts2vec\" (with method.kind = \"ts2vec\", or an instance method such as simclr or moco and [[augment.series]] views); images use the other encoders and methods",
            ));
        }
        if series {
            // Image-only settings would be ignored on series: refuse them instead.
            let t = &self.train;
            for (key, set) in [
                ("train.init", t.init.is_some()),
                ("train.labelled_per_class", t.labelled_per_class > 0),
                ("train.per_class", ts2vec && t.per_class > 0),
                ("train.knn_monitor", t.knn_monitor > 0),
                ("train.diagnose_every", t.diagnose_every > 0),
                ("data.train_classes", self.data.train_classes.is_some()),
                ("augment.steps", !self.augment.steps.is_empty()),
                ("augment.size", self.augment.size.is_some()),
            ] {
                if set {
                    return Err(Error::config(
                        key,
                        "applies to images; training on time series does not use it",
                    ));
                }
            }
            if ts2vec && !self.augment.series.is_empty() {
                return Err(Error::config(
                    "augment.series",
                    "TS2Vec makes its own views (overlapping crops and timestep masks); leave augment.series out or use an instance method such as simclr",
                ));
            }
            if !ts2vec && self.augment.series.is_empty() {
                return Err(Error::config(
                    "augment.series",
                    format!(
                        "method `{}` on time series needs the views' augmentations, e.g. [[augment.series]] op = \"jitter\", sigma = 0.03",
                        self.method.kind
                    ),
                ));
            }
            self.series_pipeline()?;
        } else if !self.augment.series.is_empty() {
            return Err(Error::config(
                "augment.series",
                "applies to time series; images take augment.preset or augment.steps",
            ));
        }
        if !(0.0..=1.0).contains(&self.method.alpha) {
            return Err(Error::config("method.alpha", "must be in [0, 1]"));
        }
        if self.train.steps == Some(0) {
            return Err(Error::config("train.steps", "must be at least 1"));
        }
        if !matches!(self.method.loss.as_str(), "nt_xent" | "dcl" | "dclw") {
            return Err(Error::config(
                "method.loss",
                format!(
                    "unknown loss `{}`; expected nt_xent, dcl or dclw",
                    self.method.loss
                ),
            ));
        }
        if self.method.loss != "nt_xent" && self.method.kind != "simclr" {
            return Err(Error::config(
                "method.loss",
                "only the simclr method takes another loss; leave it out or use kind = \"simclr\"",
            ));
        }
        if self.method.dclw_sigma.is_nan() || self.method.dclw_sigma <= 0.0 {
            return Err(Error::config("method.dclw_sigma", "must be positive"));
        }
        if self.train.knn_monitor > 0 && self.train.knn_monitor < 10 {
            return Err(Error::config(
                "train.knn_monitor",
                "use at least 10 items (or 0 to switch the monitor off)",
            ));
        }
        if self.eval.probe_l2.is_empty()
            || self
                .eval
                .probe_l2
                .iter()
                .any(|l| !l.is_finite() || *l < 0.0)
        {
            return Err(Error::config(
                "eval.probe_l2",
                "expected a list of one or more non-negative numbers",
            ));
        }
        if self.train.labelled_per_class > 0 {
            if self.method.kind != "supcon" {
                return Err(Error::config(
                    "train.labelled_per_class",
                    "semi-supervised training is SupCon's: set method.kind = \"supcon\"",
                ));
            }
            if self.train.per_class > 0 {
                return Err(Error::config(
                    "train.labelled_per_class",
                    "cannot be combined with class-balanced batches (train.per_class)",
                ));
            }
        }
        if self.method.kind == "triplet" {
            self.method.triplet_miner()?;
            if !matches!(self.method.distance.as_str(), "euclidean" | "cosine") {
                return Err(Error::config(
                    "method.distance",
                    "expected euclidean or cosine",
                ));
            }
        }
        let k = self.train.per_class;
        if k == 1 || (k > 0 && !self.train.batch_size.is_multiple_of(k)) {
            return Err(Error::config(
                "train.per_class",
                "must be 0 (plain shuffle) or at least 2 and divide train.batch_size",
            ));
        }
        if self.method.kind.starts_with("moco") {
            if self.method.kind == "moco" && self.method.queue_size < self.train.batch_size {
                return Err(Error::config(
                    "method.queue_size",
                    "must be at least train.batch_size",
                ));
            }
            if !(0.0..=1.0).contains(&self.method.momentum) {
                return Err(Error::config("method.momentum", "must be in [0, 1]"));
            }
            if !matches!(
                self.method.momentum_schedule.as_str(),
                "constant" | "cosine"
            ) {
                return Err(Error::config(
                    "method.momentum_schedule",
                    "expected constant or cosine",
                ));
            }
        }
        if self.method.kind == "nnclr" && self.method.queue_size < self.train.batch_size {
            return Err(Error::config(
                "method.queue_size",
                "must be at least train.batch_size",
            ));
        }
        if self.method.temperature.is_nan() || self.method.temperature <= 0.0 {
            return Err(Error::config("method.temperature", "must be positive"));
        }
        if self.train.batch_size < 2 {
            return Err(Error::config(
                "train.batch_size",
                "must be at least 2 (a contrastive batch needs negatives)",
            ));
        }
        if self.train.epochs == 0 {
            return Err(Error::config("train.epochs", "must be at least 1"));
        }
        if self.eval.knn_k == 0 {
            return Err(Error::config("eval.knn_k", "must be at least 1"));
        }
        match (&self.augment.preset, self.augment.steps.is_empty()) {
            _ if series => {}
            (Some(p), _) if p != "simclr" => {
                return Err(Error::config(
                    "augment.preset",
                    format!("unknown preset `{p}`; expected simclr"),
                ));
            }
            (Some(_), false) => {
                return Err(Error::config(
                    "augment",
                    "give either `preset` or `steps`, not both",
                ));
            }
            (None, true) => {
                return Err(Error::config(
                    "augment",
                    "give a `preset` or a list of `steps`",
                ));
            }
            _ => {}
        }
        crate::device::parse(&self.train.device)?;
        Ok(())
    }

    /// The augmentation pipeline for training on `train`.
    pub fn pipeline(&self, train: &ImageDataset) -> Result<Pipeline> {
        match &self.augment.preset {
            Some(_) => {
                let (mean, std) = channel_stats(train);
                Ok(Pipeline::simclr(
                    self.augment.size.unwrap_or(train.height),
                    mean,
                    std,
                ))
            }
            None => Pipeline::new(self.augment.steps.clone()),
        }
    }

    /// The views of time series for instance methods (`augment.series`).
    pub fn series_pipeline(&self) -> Result<SeriesPipeline> {
        SeriesPipeline::new(self.augment.series.clone())
    }

    /// The folder the run writes to.
    pub fn out_dir(&self) -> PathBuf {
        self.train
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from("runs").join(&self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_recipe_parses_and_errors_name_the_key() {
        let r = Recipe::default_recipe();
        assert_eq!(r.data.source, "digits");
        let p = Path::new("bad.toml");
        let e = Recipe::parse("[optimizer]\nlr = 0.1\nmomentun = 0.9\n", p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.toml") && e.contains("momentun"), "{e}");
        let e = Recipe::parse("[optimizer]\nlr = -1.0\n", p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("optimizer.lr"), "{e}");
        let e = Recipe::parse("[optimizer]\nlr = 0.1\n[train]\nbatch_size = \"x\"\n", p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("batch_size") && e.contains("line 4"), "{e}");
        let e = Recipe::parse("[optimizer]\nlr = 0.1\n[encoder]\nkind = \"vit\"\n", p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("encoder.kind") && e.contains("vit"), "{e}");
    }

    #[test]
    fn every_bundled_recipe_parses_and_validates() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../recipes");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                let r = Recipe::from_file(&p).unwrap_or_else(|e| panic!("{e}"));
                if r.data.is_series() && r.method.kind != "ts2vec" {
                    assert!(!r.series_pipeline().unwrap().steps.is_empty());
                }
                seen += 1;
            }
        }
        assert!(seen >= 12, "{seen} recipes");
    }
}
