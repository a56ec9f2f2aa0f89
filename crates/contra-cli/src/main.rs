//! `contra`: contrastive pretraining, evaluation and export from the command line.

use clap::{Args, Parser, Subcommand};
use contra::data::Splits;
use contra::data::locate::{self, load_splits};
use contra::eval::report::{self, Protocols};
use contra::methods::Method;
use contra::recipe::Recipe;
use contra::train::{self, TrainOptions};
use contra::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod series;

#[derive(Parser)]
#[command(
    name = "contra",
    version,
    about = "Contrastive representation learning: pretrain an encoder on unlabeled data, then evaluate and export its embeddings."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Pretrain an encoder from a recipe (SimCLR, MoCo, NNCLR, SupCon, triplet; TS2Vec or those on time series), then compare it with the raw inputs: kNN accuracy for images (anomaly detection when trained on `data.train_classes`), the RBF SVM for UCR/UEA series, anomaly detection for windows of sensor streams.
    Pretrain(PretrainArgs),
    /// Evaluate a trained model's embedding against raw pixels.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Write embeddings (backbone features) of a data split as .npy files and as one
    /// safetensors index with item ids and labels (for `contra search`).
    Embed(EmbedArgs),
    /// The k nearest items of an embedding index (cosine, exact) to an item of the index or
    /// to an image file.
    Search(SearchArgs),
    /// Gather a run's recipe, training curves, evaluation tables (and fewshot.json if the run
    /// folder has one) and 2-D maps of its test embeddings (PCA, t-SNE) into report.html and
    /// report.md with PNG and SVG pictures, in RUN/report.
    Report(ReportArgs),
    /// Show the build's backends and devices, and which data sets are found.
    Info,
}

#[derive(Args)]
struct PretrainArgs {
    /// Recipe file (TOML). Without it, the built-in recipe: SimCLR on the bundled 8x8 digits.
    #[arg(long, short)]
    recipe: Option<PathBuf>,
    /// Continue the run in the output folder from its last checkpoint.
    #[arg(long)]
    resume: bool,
    /// Override `train.epochs`.
    #[arg(long)]
    epochs: Option<u64>,
    /// Override `train.batch_size`.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Override `train.device`: cpu, cuda:N, tch-cpu or tch-cuda:N.
    #[arg(long)]
    device: Option<String>,
    /// Override `train.out`, the folder for checkpoints, metrics and the model.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Override `seed`.
    #[arg(long)]
    seed: Option<u64>,
    /// Override `data.path`.
    #[arg(long)]
    data_path: Option<PathBuf>,
    /// Override `data.train_limit` (use the first N training images).
    #[arg(long)]
    train_limit: Option<usize>,
    /// Override `train.workers`, the augmentation threads.
    #[arg(long)]
    workers: Option<usize>,
    /// Override `train.checkpoint_every` (steps).
    #[arg(long)]
    checkpoint_every: Option<u64>,
    /// Skip the evaluation after training.
    #[arg(long)]
    no_eval: bool,
    /// No progress line.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args)]
struct ModelArgs {
    /// A run's model.safetensors (or checkpoint.safetensors).
    #[arg(long, short)]
    model: PathBuf,
    /// Device: cpu, cuda:N, tch-cpu or tch-cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Override the data folder stored in the model's recipe.
    #[arg(long)]
    data_path: Option<PathBuf>,
}

#[derive(Subcommand)]
enum EvalCommand {
    /// Weighted kNN (cosine) on the full training labels and with few labels per class.
    Knn {
        #[command(flatten)]
        model: ModelArgs,
        /// Labels per class for the few-label rows (comma-separated); 0 to skip them.
        #[arg(long, value_delimiter = ',')]
        labels_per_class: Option<Vec<usize>>,
    },
    /// Linear probe on frozen features, on all labels and with few labels per class.
    Linear {
        #[command(flatten)]
        model: ModelArgs,
        #[arg(long, value_delimiter = ',')]
        labels_per_class: Option<Vec<usize>>,
    },
    /// The few-label table: kNN, linear probe and fine-tuning with N labels per class (or a
    /// fraction) over several seeds, beside raw inputs, a randomly initialised encoder and the
    /// encoder trained from scratch on the same labels (series models: kNN, the linear probe
    /// and the RBF SVM); printed, and written as fewshot.md and fewshot.json.
    Fewshot(FewshotArgs),
    /// Anomaly detection: fit on the normal training items, score every test item (higher is
    /// more anomalous); AUROC, AUPRC and best F1 where the test labels say which are normal.
    /// For windows of sensor streams label 0 is normal, and --scores also writes each
    /// window's stream, first row and timestamp.
    Anomaly(AnomalyArgs),
    /// Retrieval of the training items for each test item: P@1, R@k, MAP@R and MRR.
    Retrieval {
        #[command(flatten)]
        model: ModelArgs,
        /// k for recall@k (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "1,5,10")]
        k: Vec<usize>,
    },
}

#[derive(Args)]
struct FewshotArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Label budgets, comma-separated: labels per class (10) or fractions of each class (1%).
    #[arg(long, value_delimiter = ',', default_value = "1,10,100")]
    labels: Vec<String>,
    /// Label draws (seeds) per budget.
    #[arg(long, default_value_t = 5)]
    seeds: u64,
    /// Steps of fine-tuning and of training from scratch; 0 leaves both out.
    #[arg(long, default_value_t = 300)]
    finetune_steps: usize,
    #[arg(long, default_value_t = 64)]
    finetune_batch: usize,
    /// Learning rate (AdamW) of the classifier, and of the encoder trained from scratch.
    #[arg(long, default_value_t = 1e-3)]
    finetune_lr: f64,
    /// Learning rate of the pretrained encoder while it is fine-tuned.
    #[arg(long, default_value_t = 1e-4)]
    encoder_lr: f64,
    /// Folder for fewshot.md and fewshot.json (default: the model's folder).
    #[arg(long, short)]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct AnomalyArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The normal class(es); default: the recipe's `data.train_classes` (stream windows: 0).
    #[arg(long, value_delimiter = ',')]
    normal_class: Option<Vec<u32>>,
    /// Score by the mean cosine distance to the k nearest normal items.
    #[arg(long, default_value_t = 5)]
    k: usize,
    /// Score by Mahalanobis distance to the normal items' Gaussian instead of kNN.
    #[arg(long)]
    mahalanobis: bool,
    /// Write every test item's score as CSV (index,label,score,anomalous; stream windows also
    /// stream,first_row,timestamp after the index).
    #[arg(long)]
    scores: Option<PathBuf>,
}

impl AnomalyArgs {
    fn scorer(&self) -> contra::eval::anomaly::Scorer {
        use contra::eval::anomaly::Scorer;
        if self.mahalanobis {
            Scorer::Mahalanobis { eps: 0.01 }
        } else {
            Scorer::Knn { k: self.k }
        }
    }
}

#[derive(Args)]
struct ReportArgs {
    /// The run's folder (recipe.toml, metrics.jsonl, model.safetensors).
    run: PathBuf,
    /// Output folder (default: RUN/report).
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Test items drawn (with seed 0) for the embedding maps; 0 leaves the maps out.
    #[arg(long, default_value_t = 2000)]
    map_points: usize,
    /// Device for the embeddings: cpu, cuda:N, tch-cpu or tch-cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Override the data folder stored in the model's recipe.
    #[arg(long)]
    data_path: Option<PathBuf>,
}

#[derive(Args)]
struct EmbedArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Which split: train or test.
    #[arg(long, default_value = "test")]
    split: String,
    /// Output folder: embeddings.npy, labels.npy and embeddings.safetensors.
    #[arg(long, short)]
    out: PathBuf,
}

#[derive(Args)]
struct SearchArgs {
    /// An index written by `contra embed` (embeddings.safetensors).
    #[arg(long)]
    index: PathBuf,
    /// Query with the item of the index that has this id (it is left out of the results).
    #[arg(long, conflicts_with = "image", required_unless_present = "image")]
    id: Option<i64>,
    /// Query with an image file (PNG or JPEG), embedded by the index's model.
    #[arg(long)]
    image: Option<PathBuf>,
    /// The model that embeds --image (default: the one that wrote the index).
    #[arg(long, short)]
    model: Option<PathBuf>,
    /// How many results.
    #[arg(long, short, default_value_t = 10)]
    k: usize,
    /// Device: cpu, cuda:N, tch-cpu or tch-cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// How the items of an index were turned into encoder input (kept in its metadata, so that a
/// query image gets the same treatment).
#[derive(serde::Serialize, serde::Deserialize)]
struct InputRecipe {
    channels: usize,
    height: usize,
    width: usize,
    input_size: (usize, usize),
    normalize: Option<contra::augment::Normalize>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    contra::runtime::keep_freed_memory();
    let result = match cli.command {
        Command::Pretrain(a) => pretrain(a),
        Command::Eval(EvalCommand::Knn {
            model,
            labels_per_class,
        }) => eval(model, labels_per_class, false),
        Command::Eval(EvalCommand::Linear {
            model,
            labels_per_class,
        }) => eval(model, labels_per_class, true),
        Command::Eval(EvalCommand::Fewshot(a)) => eval_fewshot(a),
        Command::Eval(EvalCommand::Anomaly(a)) => eval_anomaly(a),
        Command::Eval(EvalCommand::Retrieval { model, k }) => eval_retrieval(model, k),
        Command::Embed(a) => embed(a),
        Command::Search(a) => search(a),
        Command::Report(a) => report_run(a),
        Command::Info => info(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn pretrain(a: PretrainArgs) -> Result<()> {
    let mut recipe = match &a.recipe {
        Some(p) => Recipe::from_file(p)?,
        None => Recipe::default_recipe(),
    };
    if let Some(v) = a.epochs {
        recipe.train.epochs = v;
    }
    if let Some(v) = a.batch_size {
        recipe.train.batch_size = v;
    }
    if let Some(v) = a.workers {
        recipe.train.workers = v;
    }
    if let Some(v) = a.device {
        recipe.train.device = v;
    }
    if let Some(v) = a.out {
        recipe.train.out = Some(v);
    }
    if let Some(v) = a.seed {
        recipe.seed = v;
    }
    if let Some(v) = a.data_path {
        recipe.data.set_path(v)?;
    }
    if let Some(v) = a.train_limit {
        recipe.data.set_train_limit(v)?;
    }
    if let Some(v) = a.checkpoint_every {
        recipe.train.checkpoint_every = v;
    }
    recipe.validate()?;
    if recipe.data.is_series() {
        return series::pretrain(&recipe, a.resume, a.quiet, a.no_eval);
    }
    let splits = load_splits(&recipe.data)?;
    let out = recipe.out_dir();
    eprintln!(
        "contra pretrain: {} ({} images {}x{}x{}) -> {}",
        recipe.name,
        splits.train.len,
        splits.train.channels,
        splits.train.height,
        splits.train.width,
        out.display()
    );
    let report = contra::workflow::pretrain(
        &recipe,
        &splits.train,
        &TrainOptions {
            resume: a.resume,
            quiet: a.quiet,
        },
    )?;
    let pipeline = recipe.pipeline(&splits.train)?;
    println!(
        "trained {} steps in {:.1} s: final loss {:.4}, {:.0} images/s, data wait {:.1}% of the time",
        report.steps,
        report.seconds,
        report.final_loss,
        report.views_per_second,
        100.0 * report.data_wait_fraction
    );
    println!("model: {}", out.join("model.safetensors").display());
    if a.no_eval || splits.test.labels.is_none() {
        return Ok(());
    }
    let device = contra::device::parse(&recipe.train.device)?;
    let size = pipeline.output_size(splits.train.height, splits.train.width);
    if let Some(normal) = recipe.data.train_classes().map(<[u32]>::to_vec) {
        // Trained on the normal class(es) only (the test split stays whole): evaluate as
        // one-class anomaly detection.
        let loaded = Loaded {
            model: report.model,
            recipe,
            splits,
            device,
            pipeline,
            size,
        };
        let scorer = contra::eval::anomaly::Scorer::Knn { k: 5 };
        println!("\n{}", anomaly_rows(&loaded, &normal, scorer, None)?);
        return Ok(());
    }
    let (learned, pixels) = report::embed_splits(
        report.model.encoder(),
        &splits,
        pipeline.normalization(),
        size,
        &device,
    );
    let rows = report::compare(
        &learned,
        &pixels,
        &splits,
        &recipe.eval,
        Protocols {
            knn: true,
            linear: false,
            few_label: false,
        },
        &device,
    )?;
    println!(
        "\nevaluation on {} test images:\n{}",
        splits.test.len,
        report::table(&rows)
    );
    Ok(())
}

/// A trained model with the data and preprocessing its recipe names.
struct Loaded {
    model: contra::methods::Model,
    recipe: Recipe,
    splits: Splits,
    device: contra::Device,
    /// Evaluation applies the training normalisation at the training size.
    pipeline: contra::augment::Pipeline,
    size: (usize, usize),
}

impl Loaded {
    /// Learned features and raw pixels of both splits.
    fn embeddings(&self) -> (report::Embeddings, report::Embeddings) {
        self.embeddings_of(&self.splits)
    }

    /// The same for other splits of the model's data.
    fn embeddings_of(&self, splits: &Splits) -> (report::Embeddings, report::Embeddings) {
        report::embed_splits(
            self.model.encoder(),
            splits,
            self.pipeline.normalization(),
            self.size,
            &self.device,
        )
    }
}

fn load_for_eval(m: &ModelArgs) -> Result<Loaded> {
    load_images(m, &train::TrainedFile::read(&m.model)?)
}

/// The image model in `file` with the data its recipe names (`m` may override the folder).
fn load_images(m: &ModelArgs, file: &train::TrainedFile) -> Result<Loaded> {
    let device = contra::device::parse(&m.device)?;
    let mut recipe = file.recipe.clone();
    if let Some(p) = &m.data_path {
        recipe.data.set_path(p.clone())?;
    }
    let splits = load_splits(&recipe.data)?;
    let model = file.model(splits.train.channels, &device)?;
    let pipeline = recipe.pipeline(&splits.train)?;
    let size = pipeline.output_size(splits.train.height, splits.train.width);
    Ok(Loaded {
        model,
        recipe,
        splits,
        device,
        pipeline,
        size,
    })
}

fn eval(m: ModelArgs, labels_per_class: Option<Vec<usize>>, linear: bool) -> Result<()> {
    let mut l = load_for_eval(&m)?;
    if let Some(n) = labels_per_class {
        l.recipe.eval.labels_per_class = n.into_iter().filter(|&n| n > 0).collect();
    }
    let (learned, pixels) = l.embeddings();
    let which = Protocols {
        knn: !linear,
        linear,
        few_label: !l.recipe.eval.labels_per_class.is_empty(),
    };
    let mut rows = report::compare(
        &learned,
        &pixels,
        &l.splits,
        &l.recipe.eval,
        which,
        &l.device,
    )?;
    rows.retain(|r| {
        r.protocol
            .starts_with(if linear { "linear" } else { "kNN" })
    });
    println!("{}", report::table(&rows));
    Ok(())
}

fn eval_fewshot(a: FewshotArgs) -> Result<()> {
    use contra::eval::{features::encode, fewshot, finetune, linear};
    let budgets = a
        .labels
        .iter()
        .map(|s| s.parse::<fewshot::Budget>())
        .collect::<Result<Vec<_>>>()?;
    if budgets.is_empty() {
        return Err(Error::config("--labels", "name at least one label budget"));
    }
    let file = train::TrainedFile::read(&a.model.model)?;
    if file.recipe.data.is_series() {
        return series::fewshot(&a, budgets, &series::load(&a.model, &file)?, &file);
    }
    let l = load_images(&a.model, &file)?;
    let yl = l.splits.train.labels_or_err("few-label evaluation")?;
    let yt = l.splits.test.labels_or_err("few-label evaluation")?;
    let classes = l
        .splits
        .train
        .num_classes()
        .max(l.splits.test.num_classes());
    let out_dir = a.out.clone().unwrap_or_else(|| model_dir(&a.model.model));
    let norm = l.pipeline.normalization();
    let channels = l.splits.train.channels;
    eprintln!(
        "embedding {} training and {} test items ...",
        l.splits.train.len, l.splits.test.len
    );
    let (learned, pixels) = l.embeddings();
    // A randomly initialised encoder of the same architecture, frozen.
    let random = contra::seeding::try_seeded(&l.device, l.recipe.seed ^ 0x5241_4e44, || {
        l.recipe.encoder.init(channels, &l.device)
    })?;
    let random_train = encode(&random, &l.splits.train, norm, l.size, 512, &l.device);
    let random_test = encode(&random, &l.splits.test, norm, l.size, 512, &l.device);
    let reps = [
        fewshot::Representation {
            name: "pretrained".into(),
            train: &learned.train,
            test: &learned.test,
        },
        fewshot::Representation {
            name: "random init".into(),
            train: &random_train,
            test: &random_test,
        },
        fewshot::Representation {
            name: "raw inputs".into(),
            train: &pixels.train,
            test: &pixels.test,
        },
    ];
    let ad = l.device.clone().autodiff();
    let test = finetune::ImageInputs::new(&l.splits.test, l.size, norm)?;
    let fit = |encoder, rows: &[usize], y: &[u32], cfg, head: Option<&linear::Probe>| {
        let labelled = l.splits.train.subset(rows);
        let inputs = finetune::ImageInputs::new(&labelled, l.size, norm)?;
        let model = finetune::finetune(encoder, &inputs, y, classes, head, &cfg, &ad)?;
        Ok(finetune::predict(&model, &test, 512, &l.device))
    };
    let trainers = finetune_trainers(
        &a,
        &l.recipe,
        &learned.train,
        classes,
        &l.device,
        Box::new(|| Ok(file.model(channels, &ad)?.into_encoder())),
        Box::new(|seed| {
            contra::seeding::try_seeded(&ad, l.recipe.seed ^ 0x5343_5241 ^ seed, || {
                l.recipe.encoder.init(channels, &ad)
            })
        }),
        &fit,
    );
    let settings = fewshot_settings(budgets, a.seeds, &l.recipe, classes, false);
    run_fewshot(&settings, yl, yt, &reps, &trainers, &l.device, &out_dir)
}

/// Fine-tunes `encoder` on the labelled training rows with the settings and starting
/// classifier given, and returns a class for every test item.
type FitFn<'a> = dyn Fn(
        contra::encoders::Encoder,
        &[usize],
        &[u32],
        contra::eval::finetune::FinetuneConfig,
        Option<&contra::eval::linear::Probe>,
    ) -> Result<Vec<u32>>
    + 'a;

/// The trained contenders of the few-label table (none with `--finetune-steps 0`): the
/// `pretrained` encoder fine-tuned, its classifier starting as the linear probe on the frozen
/// `features` of the same labels (LP-FT), and a freshly initialised encoder (`scratch(seed)`)
/// trained from scratch at the classifier's learning rate.
#[allow(clippy::too_many_arguments)]
fn finetune_trainers<'a>(
    a: &'a FewshotArgs,
    recipe: &'a Recipe,
    features: &'a contra::eval::Features,
    classes: usize,
    device: &'a contra::Device,
    pretrained: Box<dyn Fn() -> Result<contra::encoders::Encoder> + 'a>,
    scratch: Box<dyn Fn(u64) -> Result<contra::encoders::Encoder> + 'a>,
    fit: &'a FitFn<'a>,
) -> Vec<contra::eval::fewshot::Trainer<'a>> {
    use contra::eval::{fewshot::Trainer, finetune::FinetuneConfig, linear};
    if a.finetune_steps == 0 {
        return Vec::new();
    }
    let cfg = move |seed, encoder_lr| FinetuneConfig {
        steps: a.finetune_steps,
        batch_size: a.finetune_batch,
        lr: a.finetune_lr,
        encoder_lr,
        seed,
        ..Default::default()
    };
    vec![
        Trainer {
            name: "pretrained".into(),
            run: Box::new(move |rows: &[usize], y: &[u32], seed| {
                let probe_cfg = linear::ProbeConfig {
                    seed,
                    l2_grid: recipe.eval.probe_l2.clone(),
                    ..Default::default()
                };
                let probe =
                    linear::fit_selected(&features.select(rows), y, classes, &probe_cfg, device);
                fit(
                    pretrained()?,
                    rows,
                    y,
                    cfg(seed, a.encoder_lr),
                    Some(&probe),
                )
            }),
        },
        Trainer {
            name: "from scratch".into(),
            run: Box::new(move |rows: &[usize], y: &[u32], seed| {
                fit(scratch(seed)?, rows, y, cfg(seed, a.finetune_lr), None)
            }),
        },
    ]
}

/// The few-label settings from the command line and the model's recipe.
fn fewshot_settings(
    budgets: Vec<contra::eval::fewshot::Budget>,
    seeds: u64,
    recipe: &Recipe,
    classes: usize,
    svm: bool,
) -> contra::eval::fewshot::Settings {
    contra::eval::fewshot::Settings {
        budgets,
        seeds,
        knn_k: recipe.eval.knn_k,
        knn_temperature: recipe.eval.knn_temperature,
        probe: contra::eval::linear::ProbeConfig {
            l2_grid: recipe.eval.probe_l2.clone(),
            ..Default::default()
        },
        num_classes: classes,
        svm,
    }
}

/// Run the few-label table with progress on stderr; print it and write fewshot.md and
/// fewshot.json to `out_dir`.
fn run_fewshot(
    settings: &contra::eval::fewshot::Settings,
    train_labels: &[u32],
    test_labels: &[u32],
    reps: &[contra::eval::fewshot::Representation],
    trainers: &[contra::eval::fewshot::Trainer],
    device: &contra::Device,
    out_dir: &Path,
) -> Result<()> {
    let started = std::time::Instant::now();
    let table = contra::eval::fewshot::run(
        settings,
        train_labels,
        test_labels,
        reps,
        trainers,
        device,
        |c| {
            eprintln!(
                "[{:>6.0} s] {:<8} {:<13} {:<12} accuracy {:.4} ± {:.4}",
                started.elapsed().as_secs_f64(),
                c.budget.label(),
                c.protocol,
                c.representation,
                c.accuracy.0,
                c.accuracy.1
            )
        },
    )?;
    println!("{}", table.to_text());
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let md = out_dir.join("fewshot.md");
    let json = out_dir.join("fewshot.json");
    contra::checkpoint::write_atomic(&md, table.to_markdown().as_bytes())?;
    contra::checkpoint::write_atomic(&json, table.to_json().as_bytes())?;
    println!("wrote {} and {}", md.display(), json.display());
    Ok(())
}

/// The folder a model's evaluation files go to by default: the model's own.
fn model_dir(model: &Path) -> PathBuf {
    model
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn eval_anomaly(a: AnomalyArgs) -> Result<()> {
    let file = train::TrainedFile::read(&a.model.model)?;
    if file.recipe.data.is_series() {
        return series::anomaly(&a, &series::load(&a.model, &file)?);
    }
    let loaded = load_images(&a.model, &file)?;
    let normal_classes = match (&a.normal_class, loaded.recipe.data.train_classes()) {
        (Some(c), _) => c.clone(),
        (None, Some(c)) => c.to_vec(),
        (None, None) => {
            return Err(Error::config(
                "--normal-class",
                "name the normal class(es), or train with data.train_classes",
            ));
        }
    };
    let rows = anomaly_rows(&loaded, &normal_classes, a.scorer(), a.scores.as_deref())?;
    println!("{rows}");
    Ok(())
}

/// Where each scored item comes from, in extra CSV columns: their header, and item `i`'s
/// fields.
type Place<'a> = (&'a str, &'a dyn Fn(usize) -> String);

/// Every test item's anomaly score as CSV: `index,[place,]label,score,anomalous` (label and
/// anomalous empty where unknown).
fn write_scores(
    path: &Path,
    scores: &[f64],
    labels: Option<&[u32]>,
    anomalous: Option<&[bool]>,
    place: Option<Place>,
) -> Result<()> {
    let mut csv = String::from("index,");
    if let Some((header, _)) = place {
        csv.push_str(&format!("{header},"));
    }
    csv.push_str("label,score,anomalous\n");
    for (i, s) in scores.iter().enumerate() {
        csv.push_str(&format!("{i},"));
        if let Some((_, fields)) = place {
            csv.push_str(&format!("{},", fields(i)));
        }
        let label = labels.map_or(String::new(), |y| y[i].to_string());
        let flag = anomalous.map_or(String::new(), |a| (a[i] as u8).to_string());
        csv.push_str(&format!("{label},{s},{flag}\n"));
    }
    contra::checkpoint::write_atomic(path, csv.as_bytes())
}

/// AUROC, AUPRC and best F1 of the learned embedding beside a baseline, one line each.
fn detection_table(
    learned: &contra::eval::anomaly::DetectionMetrics,
    baseline: &contra::eval::anomaly::DetectionMetrics,
    baseline_name: &str,
) -> String {
    let mut table = format!("{:<22}{:>10}{:>13}\n", "metric", "learned", baseline_name);
    for (name, x, y) in [
        ("AUROC", learned.auroc, baseline.auroc),
        (
            "AUPRC",
            learned.average_precision,
            baseline.average_precision,
        ),
        ("best F1", learned.best_f1, baseline.best_f1),
    ] {
        table.push_str(&format!("{name:<22}{x:>10.4}{y:>13.4}\n"));
    }
    table
}

/// Anomaly metrics of the learned embedding beside raw pixels, as a table; optionally the
/// learned scores per test item as CSV.
fn anomaly_rows(
    l: &Loaded,
    normal_classes: &[u32],
    scorer: contra::eval::anomaly::Scorer,
    scores_out: Option<&Path>,
) -> Result<String> {
    use contra::eval::anomaly::detect;
    let train_labels = l.splits.train.labels.as_deref();
    let normal_rows: Vec<usize> = (0..l.splits.train.len)
        .filter(|&i| train_labels.is_none_or(|y| normal_classes.contains(&y[i])))
        .collect();
    if normal_rows.is_empty() {
        return Err(Error::config(
            "--normal-class",
            format!("no training item has class {normal_classes:?}"),
        ));
    }
    // Only the normal training items are embedded: they are all the detector is fitted on.
    let (learned, pixels) = l.embeddings_of(&Splits {
        train: l.splits.train.subset(&normal_rows),
        test: l.splits.test.clone(),
    });
    let anomalous: Option<Vec<bool>> = l
        .splits
        .test
        .labels
        .as_ref()
        .map(|y| y.iter().map(|c| !normal_classes.contains(c)).collect());
    let run = |train: &contra::eval::Features, test| {
        detect(train, test, anomalous.as_deref(), scorer, &l.device)
    };
    let ours = run(&learned.train, &learned.test)?;
    let raw = run(&pixels.train, &pixels.test)?;
    if let Some(path) = scores_out {
        let labels = l.splits.test.labels.as_deref();
        write_scores(path, &ours.scores, labels, anomalous.as_deref(), None)?;
    }
    let mut table = format!(
        "anomaly detection, normal class {normal_classes:?}: {} normal training items, {} test items, {scorer:?}\n",
        normal_rows.len(),
        l.splits.test.len
    );
    match (ours.metrics, raw.metrics) {
        (Some(a), Some(b)) => table.push_str(&detection_table(&a, &b, "raw pixels")),
        _ => table.push_str("(the test items have no labels: scores only)\n"),
    }
    Ok(table)
}

fn eval_retrieval(m: ModelArgs, ks: Vec<usize>) -> Result<()> {
    use contra::eval::retrieval::evaluate;
    let l = load_for_eval(&m)?;
    let (Some(train_y), Some(test_y)) = (&l.splits.train.labels, &l.splits.test.labels) else {
        return Err(Error::other(
            "retrieval metrics need labelled train and test splits",
        ));
    };
    if ks.contains(&0) {
        return Err(Error::config("--k", "every k must be at least 1"));
    }
    let (learned, pixels) = l.embeddings();
    let run = |e: &report::Embeddings| {
        evaluate(&e.test, test_y, &e.train, train_y, false, &ks, &l.device)
    };
    let (a, b) = (run(&learned), run(&pixels));
    println!(
        "retrieval of {} training items for {} test queries (cosine):",
        l.splits.train.len, a.queries
    );
    println!("{:<22}{:>10}{:>13}", "metric", "learned", "raw pixels");
    println!(
        "{:<22}{:>10.4}{:>13.4}",
        "precision@1", a.precision_at_1, b.precision_at_1
    );
    for ((k, x), (_, y)) in a.recall_at_k.iter().zip(&b.recall_at_k) {
        println!("{:<22}{x:>10.4}{y:>13.4}", format!("recall@{k}"));
    }
    println!("{:<22}{:>10.4}{:>13.4}", "MAP@R", a.map_at_r, b.map_at_r);
    println!(
        "{:<22}{:>10.4}{:>13.4}",
        "mean reciprocal rank", a.mean_reciprocal_rank, b.mean_reciprocal_rank
    );
    Ok(())
}

fn embed(a: EmbedArgs) -> Result<()> {
    let file = train::TrainedFile::read(&a.model.model)?;
    if file.recipe.data.is_series() {
        return series::embed(&a, &series::load(&a.model, &file)?);
    }
    let Loaded {
        model,
        splits,
        device,
        pipeline,
        size,
        ..
    } = load_images(&a.model, &file)?;
    let data = match a.split.as_str() {
        "train" => &splits.train,
        "test" => &splits.test,
        other => {
            return Err(Error::config(
                "--split",
                format!("`{other}`; expected train or test"),
            ));
        }
    };
    let f = contra::eval::features::encode(
        model.encoder(),
        data,
        pipeline.normalization(),
        size,
        512,
        &device,
    );
    let input = InputRecipe {
        channels: data.channels,
        height: data.height,
        width: data.width,
        input_size: size,
        normalize: pipeline.normalization().cloned(),
    };
    let input = serde_json::to_string(&input).expect("serialisable");
    write_embeddings(&a, &f, data.labels.as_deref(), ("contra.input", input))
}

/// `contra embed`'s files: embeddings.npy, labels.npy and the index embeddings.safetensors,
/// whose metadata name the model, the split and `input` (how its items were encoded).
fn write_embeddings(
    a: &EmbedArgs,
    f: &contra::eval::Features,
    labels: Option<&[u32]>,
    input: (&str, String),
) -> Result<()> {
    let out: &Path = &a.out;
    contra::embed::write_npy_f32(&out.join("embeddings.npy"), &f.data, f.rows, f.dim)?;
    if let Some(l) = labels {
        contra::embed::write_npy_labels(&out.join("labels.npy"), l)?;
    }
    let model_path = std::fs::canonicalize(&a.model.model).unwrap_or(a.model.model.clone());
    let metadata = std::collections::HashMap::from([
        ("contra.model".to_string(), model_path.display().to_string()),
        ("contra.split".to_string(), a.split.clone()),
        (input.0.to_string(), input.1),
    ]);
    contra::embed::write_index(
        &out.join("embeddings.safetensors"),
        &contra::embed::EmbeddingIndex {
            ids: (0..f.rows as i64).collect(),
            labels: labels.map(<[u32]>::to_vec),
            embeddings: f.clone(),
            metadata,
        },
    )?;
    println!(
        "wrote {} embeddings of dimension {} to {}",
        f.rows,
        f.dim,
        out.display()
    );
    Ok(())
}

fn report_run(a: ReportArgs) -> Result<()> {
    use contra::eval::{Features, fewshot, map};
    use contra::plot::{self, chart};
    use contra::run_report::{self, Block};
    let out = a.out.clone().unwrap_or_else(|| a.run.join("report"));
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    let recipe_path = a.run.join("recipe.toml");
    let recipe_text =
        std::fs::read_to_string(&recipe_path).map_err(|e| Error::io(&recipe_path, e))?;
    let recipe = Recipe::from_stored(&recipe_text, &recipe_path)?;
    let curves = run_report::read_curves(&a.run.join("metrics.jsonl"))?;
    let mut blocks = vec![Block::Paragraph(format!(
        "{} with a {} encoder on {}: {} epochs of batch {}, {} steps logged, final loss {}{}.",
        recipe.method.name(),
        recipe.encoder.name(),
        recipe.data.source(),
        recipe.train.epochs,
        recipe.train.batch_size,
        curves.loss.len(),
        curves
            .loss
            .last()
            .map_or("-".into(), |l| format!("{:.4}", l.1)),
        curves
            .images_per_second
            .map_or(String::new(), |r| format!(", {r:.0} images/s"))
    ))];
    let panels = run_report::curve_panels(&curves);
    let width = 420 * panels.len();
    plot::save(&out.join("curves"), width, 320, |s| {
        chart::draw_panels(s, &panels, width as f64, 320.0)
    })?;
    blocks.push(Block::Heading("Training".into()));
    blocks.push(Block::Image {
        file: "curves.png".into(),
        caption: "Training curves (also curves.svg)".into(),
    });
    let model_path = a.run.join("model.safetensors");
    // Time series runs report their curves and recipe (their evaluation prints at training).
    if model_path.is_file() && !recipe.data.is_series() {
        let l = load_for_eval(&ModelArgs {
            model: model_path.clone(),
            device: a.device.clone(),
            data_path: a.data_path.clone(),
        })?;
        eprintln!("embedding the data with {} ...", model_path.display());
        // The test embeddings, where the evaluation computed them (the maps draw from them).
        let mut test_embeddings: Option<Features> = None;
        if let Some(normal) = l.recipe.data.train_classes().map(<[u32]>::to_vec) {
            let scorer = contra::eval::anomaly::Scorer::Knn { k: 5 };
            blocks.push(Block::Heading("Anomaly detection".into()));
            blocks.push(Block::Code(anomaly_rows(&l, &normal, scorer, None)?));
        } else if l.splits.test.labels.is_some() {
            let (learned, pixels) = l.embeddings();
            let rows = report::compare(
                &learned,
                &pixels,
                &l.splits,
                &l.recipe.eval,
                Protocols {
                    knn: true,
                    linear: false,
                    few_label: false,
                },
                &l.device,
            )?;
            blocks.push(Block::Heading("Evaluation".into()));
            blocks.push(Block::Table {
                header: vec!["protocol".into(), "learned".into(), "raw pixels".into()],
                rows: rows
                    .iter()
                    .map(|r| {
                        vec![
                            r.protocol.clone(),
                            format!("{:.4}", r.learned.0),
                            format!("{:.4}", r.raw.0),
                        ]
                    })
                    .collect(),
            });
            test_embeddings = Some(learned.test);
        }
        let few = a.run.join("fewshot.json");
        if few.is_file() {
            let text = std::fs::read_to_string(&few).map_err(|e| Error::io(&few, e))?;
            let table: fewshot::Table = serde_json::from_str(&text)
                .map_err(|e| Error::format(&few, format!("not a few-label table: {e}")))?;
            let (caption, header, rows) = table.rows(|t| format!("{t} *"));
            blocks.push(Block::Heading("Few labels".into()));
            blocks.push(Block::Paragraph(format!(
                "{caption}; * marks the best of a row."
            )));
            blocks.push(Block::Table { header, rows });
        }
        if a.map_points > 0 {
            let test = &l.splits.test;
            let mut rows: Vec<usize> = (0..test.len).collect();
            contra::rng::Rng::new(0).shuffle(&mut rows);
            rows.truncate(a.map_points);
            rows.sort_unstable();
            let sample = test.subset(&rows);
            let f: Features = match &test_embeddings {
                Some(t) => t.select(&rows),
                None => contra::eval::features::encode(
                    l.model.encoder(),
                    &sample,
                    l.pipeline.normalization(),
                    l.size,
                    512,
                    &l.device,
                ),
            };
            blocks.push(Block::Heading("Embedding maps".into()));
            let names: Vec<String> = l
                .splits
                .test
                .class_names
                .iter()
                .enumerate()
                .map(|(i, n)| format!("{i} {n}"))
                .collect();
            eprintln!("mapping {} test embeddings (PCA, t-SNE) ...", f.rows);
            for (name, title, m) in [
                ("map-pca", "PCA", map::pca(&f, 2)),
                (
                    "map-tsne",
                    "t-SNE",
                    map::tsne(&f, &map::TsneConfig::default()),
                ),
            ] {
                let points: Vec<(f64, f64)> = (0..m.rows)
                    .map(|i| (m.row(i)[0] as f64, m.row(i)[1] as f64))
                    .collect();
                let title = format!("{title} of {} test embeddings", m.rows);
                plot::save(&out.join(name), 760, 560, |s| {
                    chart::draw_scatter(
                        s,
                        &title,
                        &points,
                        sample.labels.as_deref(),
                        &names,
                        760.0,
                        560.0,
                    )
                })?;
                blocks.push(Block::Image {
                    file: format!("{name}.png"),
                    caption: format!("{title}, coloured by label (also {name}.svg)"),
                });
            }
        }
    }
    blocks.push(Block::Heading("Recipe".into()));
    blocks.push(Block::Code(recipe_text));
    run_report::write_pages(&out, &format!("contra run: {}", recipe.name), &blocks)?;
    println!("wrote {}", out.join("report.html").display());
    Ok(())
}

fn search(a: SearchArgs) -> Result<()> {
    use contra::eval::Features;
    let index = contra::embed::read_index(&a.index)?;
    let device = contra::device::parse(&a.device)?;
    if a.k == 0 {
        return Err(Error::config("--k", "must be at least 1"));
    }
    let e = &index.embeddings;
    let (query, own_row, what) = match (a.id, &a.image) {
        (Some(id), _) => {
            let row = index.ids.iter().position(|&i| i == id).ok_or_else(|| {
                Error::config(
                    "--id",
                    format!(
                        "{id} is not in {} (ids {}..={})",
                        a.index.display(),
                        index.ids.first().copied().unwrap_or(0),
                        index.ids.last().copied().unwrap_or(0)
                    ),
                )
            })?;
            let label = index
                .labels
                .as_ref()
                .map_or(String::new(), |l| format!(", label {}", l[row]));
            (e.select(&[row]), Some(row), format!("item {id}{label}"))
        }
        (None, Some(path)) => {
            let bad = |m: &str| Error::format(&a.index, m.to_string());
            if index.metadata.get("contra.data").map(String::as_str) == Some("series") {
                return Err(bad(
                    "this index holds time series embeddings: query it with --id",
                ));
            }
            let input: InputRecipe = index
                .metadata
                .get("contra.input")
                .ok_or_else(|| bad("no contra.input metadata: write the index with contra embed"))
                .and_then(|t| {
                    serde_json::from_str(t).map_err(|e| bad(&format!("bad contra.input: {e}")))
                })?;
            let model_path = match (&a.model, index.metadata.get("contra.model")) {
                (Some(m), _) => m.clone(),
                (None, Some(m)) => PathBuf::from(m),
                (None, None) => {
                    return Err(Error::config(
                        "--model",
                        "name the model that embeds --image",
                    ));
                }
            };
            let file = train::TrainedFile::read(&model_path)?;
            let model = file.model(input.channels, &device)?;
            let mut img = contra::data::folder::decode(path)?.to_channels(input.channels);
            img = img.resize(input.height, input.width);
            let item = contra::data::ImageDataset::new(
                img.to_bytes(),
                input.channels,
                input.height,
                input.width,
                None,
            )?;
            let f: Features = contra::eval::features::encode(
                model.encoder(),
                &item,
                input.normalize.as_ref(),
                input.input_size,
                1,
                &device,
            );
            if f.dim != e.dim {
                return Err(Error::format(
                    &model_path,
                    format!(
                        "embeds to dimension {}, the index holds dimension {}",
                        f.dim, e.dim
                    ),
                ));
            }
            (f, None, path.display().to_string())
        }
        (None, None) => return Err(Error::config("--id", "give --id or --image")),
    };
    let hits = contra::search::top_k(&query, e, a.k, |_, r| Some(r) == own_row, &device);
    println!("{} nearest of {} items to {what}:", hits[0].len(), e.rows);
    println!(
        "{:>5}  {:>10}  {:>6}  {:>10}",
        "rank", "id", "label", "cosine"
    );
    for (rank, h) in hits[0].iter().enumerate() {
        let label = index
            .labels
            .as_ref()
            .map_or("-".to_string(), |l| l[h.row].to_string());
        println!(
            "{:>5}  {:>10}  {:>6}  {:>10.4}",
            rank + 1,
            index.ids[h.row],
            label,
            h.similarity
        );
    }
    Ok(())
}

fn info() -> Result<()> {
    println!("contra {}", env!("CARGO_PKG_VERSION"));
    println!(
        "backends compiled in: {}",
        contra::device::features().join(", ")
    );
    println!("devices: {}", contra::device::available().join(", "));
    println!("data sets:");
    println!("  digits: bundled (1,797 images, 8x8)");
    for name in ["fashion-mnist", "mnist", "cifar10"] {
        let found = locate::candidates(name, None)
            .into_iter()
            .find(|p| p.is_dir());
        match found {
            Some(p) => println!("  {name}: {}", p.display()),
            None => println!(
                "  {name}: not found (searched $CONTRA_DATA/{name}{})",
                if name == "fashion-mnist" {
                    " and /usr/share/datasets/fashion-mnist"
                } else {
                    ""
                }
            ),
        }
    }
    Ok(())
}
