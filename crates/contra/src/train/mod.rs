//! The one training loop: any [`Trainable`] on batches of augmented views, with the optimizer
//! and schedule of the recipe, a progress line, a JSONL metrics log, and checkpoints that let
//! `--resume` continue a killed run to the same result as an uninterrupted one.

pub mod data_parallel;
pub mod progress;

use crate::augment::loader::{BatchSource, EpochLoader, LoaderConfig, batches_per_epoch};
use crate::checkpoint::{
    HostTensor, load_module, module_tensors, read_safetensors, write_atomic, write_safetensors,
};
use crate::data::{Dataset, ImageDataset};
use crate::error::{Error, Result};
use crate::methods::Model;
pub use crate::methods::Trainable;
use crate::optim::schedule::Schedule;
use crate::optim::schedule::ScheduleSpec;
use crate::optim::{Optimizer, OptimizerSpec};
use crate::recipe::Recipe;
use crate::seeding::try_seeded;
use burn::prelude::*;
use progress::Progress;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

pub mod series;

/// The model a recipe describes, freshly initialised from the recipe's seed.
pub fn build_model(recipe: &Recipe, in_channels: usize, device: &Device) -> Result<Model> {
    try_seeded(device, recipe.seed, || {
        recipe
            .method
            .init(&recipe.encoder, &recipe.head, in_channels, device)
    })
}

/// Names of the files a run writes in its output folder.
pub struct RunFiles {
    pub dir: PathBuf,
}

impl RunFiles {
    pub fn checkpoint(&self) -> PathBuf {
        self.dir.join("checkpoint.safetensors")
    }
    pub fn model(&self) -> PathBuf {
        self.dir.join("model.safetensors")
    }
    pub fn metrics(&self) -> PathBuf {
        self.dir.join("metrics.jsonl")
    }
    pub fn recipe(&self) -> PathBuf {
        self.dir.join("recipe.toml")
    }
}

#[derive(Clone, Debug, Default)]
pub struct TrainOptions {
    /// Continue from the run folder's checkpoint.
    pub resume: bool,
    /// No progress line.
    pub quiet: bool,
}

/// Where a run stands: saved in every checkpoint.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct TrainerState {
    epoch: u64,
    step_in_epoch: usize,
    global_step: u64,
    optimizer_steps: u64,
    last_loss: f32,
    seed: u64,
    recipe: String,
    /// The processes that trained it (1 alone); a run resumes with as many.
    #[serde(default = "one_rank")]
    ranks: usize,
}

fn one_rank() -> usize {
    1
}

fn save_checkpoint<M: burn::module::Module>(
    files: &RunFiles,
    model: &M,
    opt: &Optimizer,
    state: &TrainerState,
    metadata: &[(String, String)],
) -> Result<()> {
    let mut tensors: BTreeMap<String, HostTensor> = module_tensors(model)
        .into_iter()
        .map(|(k, v)| (format!("model.{k}"), v))
        .collect();
    for (k, data) in opt.state_tensors() {
        let n = data.len();
        tensors.insert(
            format!("optim.{k}"),
            HostTensor {
                shape: vec![n],
                data,
            },
        );
    }
    let mut meta: HashMap<String, String> = metadata.iter().cloned().collect();
    meta.insert(
        "contra.trainer".to_string(),
        serde_json::to_string(state).expect("serialisable state"),
    );
    write_safetensors(&files.checkpoint(), &tensors, meta)
}

fn load_checkpoint<M: burn::module::Module>(
    path: &Path,
    model: M,
    opt: &mut Optimizer,
    device: &Device,
) -> Result<(M, TrainerState)> {
    let (tensors, meta) = read_safetensors(path)?;
    let state: TrainerState = meta
        .get("contra.trainer")
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or_else(|| {
            Error::format(path, "not a contra training checkpoint (no trainer state)")
        })?;
    let model = load_module(model, &tensors, "model.", path)?;
    let mut optim: Vec<(String, Vec<f32>)> = tensors
        .into_iter()
        .filter_map(|(k, v)| k.strip_prefix("optim.").map(|k| (k.to_string(), v.data)))
        .collect();
    // Slots of one parameter must load in order.
    optim.sort_by(|a, b| {
        let split = |s: &str| {
            s.rsplit_once('#')
                .map(|(p, n)| (p.to_string(), n.parse::<usize>().unwrap_or(0)))
        };
        split(&a.0).cmp(&split(&b.0))
    });
    opt.load_state(state.optimizer_steps, optim, device)?;
    Ok((model, state))
}

/// Whether a checkpoint's recipe trains the same model as `recipe`: where files go, how often
/// checkpoints are written, the device and the number of worker threads may differ.
fn same_results(saved: &str, recipe: &Recipe, path: &Path) -> Result<bool> {
    let normalise = |r: &Recipe| {
        let mut r = r.clone();
        r.train.checkpoint_every = 0;
        r.train.out = None;
        r.train.device = String::new();
        r.train.workers = 1;
        r.train.prefetch = 1;
        r.eval = Default::default();
        r
    };
    let saved = Recipe::from_stored(saved, path)?;
    Ok(normalise(&saved) == normalise(recipe))
}

/// Drop metric records past `global_step` (they were logged after the checkpoint).
fn truncate_metrics(path: &Path, global_step: u64) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let kept: String = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v.get("step").and_then(|s| s.as_u64()))
                .is_some_and(|s| s <= global_step)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    write_atomic(path, kept.as_bytes())
}

/// `model` with the encoder and projection head of the model file at `path`: every tensor
/// under `encoder.` or `head.` with the same path and shape, whatever method wrote the file
/// (momentum methods' key networks start as copies of them). Fails unless the whole encoder
/// matches.
pub fn init_from(model: Model, path: &Path) -> Result<Model> {
    let (source, _) = read_safetensors(path)?;
    // Keys are `<Method>.<module path>` (`model.` in front in checkpoints).
    let by_path: HashMap<&str, &HostTensor> = source
        .iter()
        .filter_map(|(k, v)| {
            let k = k.strip_prefix("model.").unwrap_or(k);
            let (_, rest) = k.split_once('.')?;
            (rest.starts_with("encoder.") || rest.starts_with("head.")).then_some((rest, v))
        })
        .collect();
    let mut tensors: HashMap<String, HostTensor> = module_tensors(&model).into_iter().collect();
    let (mut encoder, mut copied) = (0, 0);
    for (key, value) in tensors.iter_mut() {
        let Some((_, rest)) = key.split_once('.') else {
            continue;
        };
        let wanted = rest.strip_prefix("key_").unwrap_or(rest);
        encoder += wanted.starts_with("encoder.") as usize;
        if let Some(src) = by_path.get(wanted)
            && src.shape == value.shape
        {
            *value = (*src).clone();
            copied += wanted.starts_with("encoder.") as usize;
        }
    }
    if copied < encoder {
        return Err(Error::format(
            path,
            format!(
                "train.init: {copied} of the encoder's {encoder} tensors match this model; it needs the same encoder"
            ),
        ));
    }
    load_module(model, &tensors, "", path)
}

/// The training labels with only `n` per class kept (the same items as the few-label
/// evaluation draws for `seed`); the others become [`UNLABELLED`](crate::losses::UNLABELLED).
pub fn keep_labels_per_class(train: &ImageDataset, n: usize, seed: u64) -> Vec<u32> {
    let labels = train.labels.as_deref().unwrap_or_default();
    let mut kept = vec![crate::losses::UNLABELLED; labels.len()];
    for i in crate::data::sampling::sample_per_class(labels, train.num_classes(), n, seed) {
        kept[i] = labels[i];
    }
    kept
}

/// A measurement of the model that changes nothing in it.
pub type Measure<'a, M, T> = Box<dyn Fn(&M) -> T + 'a>;

/// Measurements the loop takes of the model while it trains.
pub struct Monitors<'a, M> {
    /// Every `train.diagnose_every` steps: logged as `"diagnostics"`.
    pub diagnose: Option<Measure<'a, M, serde_json::Value>>,
    /// After every epoch: logged as `"knn_accuracy"`.
    pub knn_accuracy: Option<Measure<'a, M, f64>>,
}

impl<M> Monitors<'_, M> {
    /// No measurements.
    pub fn none() -> Self {
        Monitors {
            diagnose: None,
            knn_accuracy: None,
        }
    }
}

/// What a finished run reports.
#[derive(Debug)]
pub struct TrainReport<M> {
    pub model: M,
    pub final_loss: f32,
    pub steps: u64,
    /// Views per second through the model (every view of every item), over the steps of this
    /// process.
    pub views_per_second: f64,
    /// Fraction of the wall time the trainer spent waiting for batches.
    pub data_wait_fraction: f64,
    pub seconds: f64,
    /// Across processes: the bytes this rank sent per step (gradients and its rows of the
    /// gathered embeddings); 0 alone.
    pub bytes_sent_per_step: f64,
}

impl<M> TrainReport<M> {
    /// The same report around `f(model)`.
    pub fn map<N>(self, f: impl FnOnce(M) -> N) -> TrainReport<N> {
        TrainReport {
            model: f(self.model),
            final_loss: self.final_loss,
            steps: self.steps,
            views_per_second: self.views_per_second,
            data_wait_fraction: self.data_wait_fraction,
            seconds: self.seconds,
            bytes_sent_per_step: self.bytes_sent_per_step,
        }
    }
}

/// The loader settings a recipe gives: two views per item.
pub fn loader_config(recipe: &Recipe) -> LoaderConfig {
    LoaderConfig {
        batch_size: recipe.train.batch_size,
        views: 2,
        workers: recipe.train.workers,
        prefetch: recipe.train.prefetch,
        seed: recipe.seed,
        per_class: recipe.train.per_class,
    }
}

/// What the one loop needs: the optimizer and its schedule, the loader, how long, and where
/// (if anywhere) the run's files go.
#[derive(Clone, Debug)]
pub struct LoopSpec {
    pub optimizer: OptimizerSpec,
    /// Learning-rate factors by parameter path prefix, first match wins (`encoder` at 0.1:
    /// the encoder learns at a tenth of the rate of the rest).
    pub lr_scale: Vec<(String, f64)>,
    pub schedule: ScheduleSpec,
    pub loader: LoaderConfig,
    pub epochs: u64,
    /// Train this many steps, rounded up to whole epochs, instead of `epochs`.
    pub steps: Option<u64>,
    /// Log the diagnostics monitor every N steps (0: never).
    pub diagnose_every: u64,
    /// Write a checkpoint every N steps as well as after every epoch (0: epochs only).
    pub checkpoint_every: u64,
    /// The recipe of a run that keeps its files in the recipe's folder (metrics, checkpoints
    /// for exact resume, the model file); `None` trains in memory (fine-tuning).
    pub record: Option<Recipe>,
    /// More metadata for the model file and checkpoints (a text model's tokenizer).
    pub metadata: Vec<(String, String)>,
}

impl LoopSpec {
    /// A recipe's run, keeping its files.
    pub fn of_recipe(recipe: &Recipe) -> Self {
        Self {
            optimizer: recipe.optimizer.clone(),
            lr_scale: Vec::new(),
            schedule: recipe.schedule.clone(),
            loader: loader_config(recipe),
            epochs: recipe.train.epochs,
            steps: recipe.train.steps,
            diagnose_every: recipe.train.diagnose_every,
            checkpoint_every: recipe.train.checkpoint_every,
            record: Some(recipe.clone()),
            metadata: Vec::new(),
        }
    }
}

/// The files of a run that keeps them.
struct Record {
    files: RunFiles,
    log: std::fs::File,
    recipe_text: String,
    metadata: Vec<(String, String)>,
}

impl Record {
    fn line(&mut self, value: serde_json::Value) -> Result<()> {
        writeln!(self.log, "{value}").map_err(|e| Error::io(self.files.metrics(), e))
    }

    fn checkpoint<M: burn::module::Module>(
        &mut self,
        model: &M,
        opt: &Optimizer,
        state: &TrainerState,
    ) -> Result<()> {
        self.log.flush().ok();
        save_checkpoint(&self.files, model, opt, state, &self.metadata)
    }
}

/// The one training loop on a recipe: its optimizer, schedule and loader, its metrics,
/// checkpoints (resumable exactly) and model file in the recipe's folder.
pub fn train_loop<S: BatchSource, M: Trainable<Batch = S::Batch>>(
    recipe: &Recipe,
    source: Arc<S>,
    model: M,
    device: &Device,
    opts: &TrainOptions,
    monitors: Monitors<M>,
) -> Result<TrainReport<M>> {
    run_loop(
        &LoopSpec::of_recipe(recipe),
        source,
        model,
        device,
        opts,
        monitors,
    )
}

/// The one training loop: batches from `source` in the background, the model's loss, the
/// optimizer and schedule, and where the spec keeps a record, metrics, checkpoints and the
/// model file. Pretraining and fine-tuning both train here.
pub fn run_loop<S: BatchSource, M: Trainable<Batch = S::Batch>>(
    spec: &LoopSpec,
    source: Arc<S>,
    mut model: M,
    device: &Device,
    opts: &TrainOptions,
    monitors: Monitors<M>,
) -> Result<TrainReport<M>> {
    let bs = spec.loader.batch_size;
    // Across processes every rank runs this loop on its share of each global batch; rank 0
    // alone writes the run's files.
    let group = crate::dist::group();
    let (rank, ranks) = crate::dist::rank_and_size();
    if bs < ranks {
        return Err(Error::config(
            "train.batch_size",
            format!("{bs} is smaller than the {ranks} processes: each needs an item"),
        ));
    }
    if let Some(recipe) = &spec.record {
        crate::dist::set_sync_batch_norm(recipe.train.sync_batch_norm);
    }
    if ranks > 1 {
        match &spec.record {
            Some(recipe) if !recipe.method.across_processes() => {
                return Err(Error::config(
                    "method.kind",
                    format!(
                        "`{}` does not train across processes yet (simclr, moco, moco_v3, nnclr, byol, supcon, triplet, mnrl, simcse and clip do): run it without mpirun",
                        recipe.method.name()
                    ),
                ));
            }
            None => {
                return Err(Error::other(
                    "fine-tuning runs in one process: run it without mpirun",
                ));
            }
            _ => {}
        }
    }
    let steps_per_epoch = batches_per_epoch(source.count(), bs) as u64;
    if steps_per_epoch == 0 {
        return Err(Error::config(
            "train.batch_size",
            format!("{bs} is larger than the {} training items", source.count()),
        ));
    }
    // `train.steps` is rounded up to whole epochs (the recipe stored with the run says so).
    let epochs = spec
        .steps
        .map_or(spec.epochs, |s| s.div_ceil(steps_per_epoch));
    let total = steps_per_epoch * epochs;
    let schedule = Schedule::new(&spec.schedule, spec.optimizer.lr(), steps_per_epoch, epochs);
    let mut opt = Optimizer::new(spec.optimizer.clone())?.with_lr_scale(spec.lr_scale.clone());
    let mut state = TrainerState {
        epoch: 0,
        step_in_epoch: 0,
        global_step: 0,
        optimizer_steps: 0,
        last_loss: f32::NAN,
        seed: spec.loader.seed,
        recipe: String::new(),
        ranks,
    };
    let mut record = match &spec.record {
        None => None,
        Some(recipe) => {
            let mut recipe = recipe.clone();
            recipe.train.epochs = epochs;
            let recipe_text = recipe.to_toml()?;
            state.recipe = recipe_text.clone();
            let files = RunFiles {
                dir: recipe.out_dir(),
            };
            if opts.resume {
                let path = files.checkpoint();
                if !path.is_file() {
                    return Err(Error::format(
                        &path,
                        "cannot resume: no checkpoint here (run without --resume to start)",
                    ));
                }
                let (m, s) = load_checkpoint(&path, model, &mut opt, device)?;
                if !same_results(&s.recipe, &recipe, &path)? {
                    return Err(Error::format(
                        &path,
                        "cannot resume: the checkpoint was written by a different recipe",
                    ));
                }
                if s.ranks != ranks {
                    return Err(Error::format(
                        &path,
                        format!(
                            "cannot resume: the run trained in {} process(es), this is {ranks}; resume with `mpirun -n {}`",
                            s.ranks, s.ranks
                        ),
                    ));
                }
                model = m;
                state = s;
                if rank == 0 {
                    truncate_metrics(&files.metrics(), state.global_step)?;
                }
            } else if rank == 0 {
                std::fs::create_dir_all(&files.dir).map_err(|e| Error::io(&files.dir, e))?;
                write_atomic(&files.metrics(), b"")?;
            }
            // Every rank has loaded the checkpoint before rank 0 may overwrite it.
            crate::dist::barrier();
            if rank > 0 {
                None
            } else {
                write_atomic(&files.recipe(), recipe_text.as_bytes())?;
                let log = std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(files.metrics())
                    .map_err(|e| Error::io(files.metrics(), e))?;
                Some(Record {
                    files,
                    log,
                    recipe_text,
                    metadata: spec.metadata.clone(),
                })
            }
        }
    };

    let mut progress = Progress::new(!opts.quiet && rank == 0, total);
    let sent_before = group.as_ref().map_or(0, |g| g.bytes_sent());
    let started = Instant::now();
    let mut waited = std::time::Duration::ZERO;
    let mut views = 0u64;
    let mut steps_here = 0u64;
    // Every item brings the same number of views: the global batch's views follow from this
    // rank's share without an exchange.
    let share = crate::dist::share(bs, rank, ranks).len() as u64;
    while state.epoch < epochs {
        let epoch = state.epoch;
        let mut loader = EpochLoader::start_shard(
            source.clone(),
            spec.loader.clone(),
            epoch,
            state.step_in_epoch,
            (rank, ranks),
        );
        let mut epoch_loss = 0f64;
        let mut epoch_steps = 0u64;
        for batch in loader.by_ref() {
            let views_here = M::views_in(&batch) * bs as u64 / share;
            let lr = schedule.lr(state.global_step);
            let (loss_value, mut grads) = model.batch_gradients(batch, device);
            if !loss_value.is_finite() {
                return Err(Error::other(format!(
                    "loss became {loss_value} at step {} (epoch {epoch}); lower the learning rate or raise the temperature",
                    state.global_step
                )));
            }
            if let Some(group) = &group {
                // Every rank computed the loss of the global batch (the same value) and the
                // gradient through its own rows: their sum is the whole gradient.
                grads = data_parallel::all_reduce_gradients(&model, grads, group.as_ref());
            }
            model = opt.step(lr, model, grads);
            model = model.after_optimizer_step(state.global_step, total);
            state.global_step += 1;
            state.step_in_epoch += 1;
            state.optimizer_steps = opt.steps;
            state.last_loss = loss_value;
            epoch_loss += loss_value as f64;
            epoch_steps += 1;
            views += views_here;
            steps_here += 1;
            let rate = views as f64 / started.elapsed().as_secs_f64().max(1e-9);
            progress.update(
                state.global_step,
                epoch + 1,
                epochs,
                loss_value,
                lr,
                rate,
                steps_here,
            );
            let Some(record) = record.as_mut() else {
                continue;
            };
            record.line(serde_json::json!({"step": state.global_step, "epoch": epoch, "loss": loss_value, "lr": lr, "images_per_second": rate}))?;
            if let Some(diagnose) = &monitors.diagnose
                && state.global_step.is_multiple_of(spec.diagnose_every)
            {
                record.line(serde_json::json!({"step": state.global_step, "epoch": epoch, "diagnostics": diagnose(&model)}))?;
            }
            let every = spec.checkpoint_every;
            if every > 0
                && state.global_step.is_multiple_of(every)
                && (state.step_in_epoch as u64) < steps_per_epoch
            {
                record.checkpoint(&model, &opt, &state)?;
            }
        }
        waited += loader.waited;
        if let Some(e) = loader.error() {
            return Err(e);
        }
        drop(loader);
        state.epoch += 1;
        state.step_in_epoch = 0;
        if let Some(record) = record.as_mut() {
            record.checkpoint(&model, &opt, &state)?;
            if epoch_steps > 0 {
                record.line(serde_json::json!({"step": state.global_step, "epoch": epoch, "epoch_mean_loss": epoch_loss / epoch_steps as f64}))?;
            }
        }
        if let Some(knn_accuracy) = monitors.knn_accuracy.as_ref().filter(|_| rank == 0) {
            let acc = knn_accuracy(&model);
            if let Some(record) = record.as_mut() {
                record.line(serde_json::json!({"step": state.global_step, "epoch": epoch, "knn_accuracy": acc}))?;
            }
            if !opts.quiet {
                eprintln!("epoch {}: kNN monitor accuracy {acc:.4}", epoch + 1);
            }
        }
    }
    progress.finish();
    if let Some(record) = record {
        let weights: BTreeMap<String, HostTensor> = module_tensors(&model);
        let mut meta: HashMap<String, String> = record.metadata.into_iter().collect();
        meta.insert("contra.recipe".to_string(), record.recipe_text);
        write_safetensors(&record.files.model(), &weights, meta)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(TrainReport {
        model,
        final_loss: state.last_loss,
        steps: state.global_step,
        views_per_second: views as f64 / seconds.max(1e-9),
        data_wait_fraction: waited.as_secs_f64() / seconds.max(1e-9),
        seconds,
        bytes_sent_per_step: group.as_ref().map_or(0.0, |g| {
            (g.bytes_sent() - sent_before) as f64 / steps_here.max(1) as f64
        }),
    })
}

/// A run's `model.safetensors` (or a checkpoint): its tensors and the recipe stored inside.
pub struct TrainedFile {
    pub path: PathBuf,
    pub recipe: Recipe,
    /// The file's metadata (the recipe, and what a modality keeps: a tokenizer).
    pub meta: HashMap<String, String>,
    tensors: HashMap<String, HostTensor>,
    prefix: &'static str,
}

impl TrainedFile {
    pub fn read(path: &Path) -> Result<Self> {
        let (tensors, meta) = read_safetensors(path)?;
        let (recipe_text, prefix) = match (meta.get("contra.recipe"), meta.get("contra.trainer")) {
            (Some(r), _) => (r.clone(), ""),
            (None, Some(t)) => {
                let s: TrainerState = serde_json::from_str(t)
                    .map_err(|e| Error::format(path, format!("bad trainer state: {e}")))?;
                (s.recipe, "model.")
            }
            _ => {
                return Err(Error::format(
                    path,
                    "not a contra model: it carries no recipe",
                ));
            }
        };
        let recipe = Recipe::from_stored(&recipe_text, path)?;
        Ok(Self {
            path: path.to_path_buf(),
            recipe,
            meta,
            tensors,
            prefix,
        })
    }

    /// The trained model, for inputs with `in_channels` channels.
    pub fn model(&self, in_channels: usize, device: &Device) -> Result<Model> {
        let model = build_model(&self.recipe, in_channels, device)?;
        self.load(model)
    }

    /// This file's weights in `module`, built to the recipe's shapes.
    pub fn load<M: burn::module::Module>(&self, module: M) -> Result<M> {
        load_module(module, &self.tensors, self.prefix, &self.path)
    }
}
