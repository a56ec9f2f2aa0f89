//! `contra eval`: kNN, the linear probe, the few-label table, anomaly detection and retrieval
//! of a trained model, each beside the raw inputs. Every evaluation is also added to
//! `eval.json` in the model's folder.

use super::{ModelArgs, print};
use contra::eval::anomaly::Scorer;
use contra::eval::fewshot::Budget;
use contra::eval::report::{self, Protocols};
use contra::train::TrainedFile;
use contra::workflow::evaluate::{self, Detector, FinetuneSettings};
use contra::workflow::{ForModality, Loaded, Modality, dispatch, record_evaluation};
use contra::{Error, Result};
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Weighted kNN (cosine) on the full training labels and with few labels per class.
    Knn(Knn),
    /// Linear probe on frozen features, on all labels and with few labels per class.
    Linear(Knn),
    /// The few-label table: kNN, linear probe and fine-tuning with N labels per class (or a
    /// fraction) over several seeds, beside raw inputs, a randomly initialised encoder and the
    /// encoder trained from scratch on the same labels (series models also the RBF SVM);
    /// printed, and written as fewshot.md and fewshot.json.
    Fewshot(Fewshot),
    /// Anomaly detection: fit on the normal training items, score every test item (higher is
    /// more anomalous); AUROC, AUPRC and best F1 where the test labels say which are normal.
    /// For windows of sensor streams label 0 is normal, and --scores also writes each
    /// window's stream, first row and timestamp.
    Anomaly(Anomaly),
    /// Retrieval of the training items for each test item: P@1, R@k, MAP@R and MRR.
    Retrieval(Retrieval),
    /// Text pairs: each test text ranks the distinct positives of the test split (WordNet:
    /// glosses against synset names); R@1, R@10 and MRR@10, beside TF-IDF.
    Pairs(Pairs),
    /// Text similarity: Pearson and Spearman of the cosine of each pair of a file of
    /// (sentence1, sentence2, score) against its score.
    Sts(Sts),
    /// Text retrieval on a data set in the BEIR layout (corpus.jsonl, queries.jsonl,
    /// qrels/SPLIT.tsv): nDCG@10, MRR@10, R@1, R@10, R@100 and MAP@100.
    Beir(Beir),
    /// Image-text (CLIP) models: zero-shot classification of the test images by class names
    /// in the data's prompt templates (every labelling the data have), and image-to-text and
    /// text-to-image R@1/5/10 among the test images and their captions.
    Zeroshot(Pairs),
}

#[derive(clap::Args)]
pub struct Sts {
    #[command(flatten)]
    model: ModelArgs,
    /// The pairs: .tsv, .csv or .jsonl with columns sentence1, sentence2 and score.
    #[arg(long)]
    file: PathBuf,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct Beir {
    #[command(flatten)]
    model: ModelArgs,
    /// The data set's folder.
    #[arg(long)]
    dir: PathBuf,
    /// Which qrels file: qrels/SPLIT.tsv.
    #[arg(long, default_value = "test")]
    split: String,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct Pairs {
    #[command(flatten)]
    model: ModelArgs,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct Knn {
    #[command(flatten)]
    model: ModelArgs,
    /// Labels per class for the few-label rows (comma-separated); 0 to skip them.
    #[arg(long, value_delimiter = ',')]
    labels_per_class: Option<Vec<usize>>,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct Fewshot {
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
    /// Print the table as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct Anomaly {
    #[command(flatten)]
    model: ModelArgs,
    /// The normal class(es); default: the recipe's `data.train_classes` (stream windows: 0).
    #[arg(long, value_delimiter = ',')]
    normal_class: Option<Vec<u32>>,
    /// Score by the mean cosine distance to the k nearest normal items (default: the
    /// method's own detector where it has one (CSI's, NCAD's contextual score), else k = 5).
    #[arg(long)]
    k: Option<usize>,
    /// Score by Mahalanobis distance to the normal items' Gaussian instead of kNN.
    #[arg(long)]
    mahalanobis: bool,
    /// Write every test item's score as CSV (index,label,score,anomalous; stream windows also
    /// stream,first_row,timestamp after the index).
    #[arg(long)]
    scores: Option<PathBuf>,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct Retrieval {
    #[command(flatten)]
    model: ModelArgs,
    /// k for recall@k (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,5,10")]
    k: Vec<usize>,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
}

impl Command {
    fn model(&self) -> &ModelArgs {
        match self {
            Command::Knn(a) | Command::Linear(a) => &a.model,
            Command::Fewshot(a) => &a.model,
            Command::Anomaly(a) => &a.model,
            Command::Retrieval(a) => &a.model,
            Command::Pairs(a) | Command::Zeroshot(a) => &a.model,
            Command::Sts(a) => &a.model,
            Command::Beir(a) => &a.model,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Command::Knn(_) => "eval knn",
            Command::Linear(_) => "eval linear",
            Command::Fewshot(_) => "eval fewshot",
            Command::Anomaly(_) => "eval anomaly",
            Command::Retrieval(_) => "eval retrieval",
            Command::Pairs(_) => "eval pairs",
            Command::Sts(_) => "eval sts",
            Command::Beir(_) => "eval beir",
            Command::Zeroshot(_) => "eval zeroshot",
        }
    }
}

pub fn run(c: Command) -> Result<()> {
    let file = c.model().file()?;
    let recipe = file.recipe.clone();
    let result = match &c {
        Command::Pairs(a) => pairs(a, &file)?,
        Command::Sts(a) => sts(a, &file)?,
        Command::Beir(a) => beir(a, &file)?,
        Command::Zeroshot(a) => zeroshot(a, &file)?,
        _ => dispatch(&recipe, Eval { c: &c, file: &file })?,
    };
    record_evaluation(&c.model().model, c.name(), result)?;
    Ok(())
}

struct Eval<'a> {
    c: &'a Command,
    file: &'a TrainedFile,
}

impl ForModality for Eval<'_> {
    /// The result, as recorded in eval.json.
    type Output = Result<serde_json::Value>;

    fn run<M: Modality>(self) -> Result<serde_json::Value> {
        let l: Loaded<M> = self.c.model().load(self.file)?;
        let value = match self.c {
            Command::Knn(a) | Command::Linear(a) => {
                knn_or_linear(l, a, matches!(self.c, Command::Linear(_)))?
            }
            Command::Fewshot(a) => fewshot(&l, a)?,
            Command::Anomaly(a) => anomaly(&l, a)?,
            Command::Retrieval(a) => {
                let r = evaluate::retrieval(&l, &a.k)?;
                print(a.json, &r, || r.to_text(M::raw_name()));
                serde_json::to_value(&r)
            }
            Command::Pairs(_) | Command::Sts(_) | Command::Beir(_) | Command::Zeroshot(_) => {
                return Err(Error::other("text and image-text evaluations run in `run`"));
            }
        };
        Ok(value.expect("results serialise"))
    }
}

/// An error unless `file` holds a text model (`command` evaluates text).
fn require_text(file: &TrainedFile, command: &str) -> Result<()> {
    if !file.recipe.data.is_text() {
        return Err(Error::config(
            command,
            format!(
                "evaluates text models; this model's data source is `{}`",
                file.recipe.data.source()
            ),
        ));
    }
    Ok(())
}

/// The text model of `file`.
fn text_model(
    file: &TrainedFile,
    model: &ModelArgs,
    command: &str,
) -> Result<(contra::workflow::TrainedText, contra::Device)> {
    require_text(file, command)?;
    let device = contra::device::parse(&model.device)?;
    Ok((
        contra::workflow::text::read_text_model(file, &device)?,
        device,
    ))
}

fn sts(a: &Sts, file: &TrainedFile) -> Result<serde_json::Value> {
    let (model, device) = text_model(file, &a.model, "eval sts")?;
    let r = contra::workflow::text::sts(&model, &a.file, &device)?;
    print(a.json, &r, || {
        format!(
            "STS on {} pairs of {}: Pearson {:.4}, Spearman {:.4}\n",
            r.pairs,
            a.file.display(),
            r.pearson,
            r.spearman
        )
    });
    Ok(serde_json::to_value(&r).expect("results serialise"))
}

fn beir(a: &Beir, file: &TrainedFile) -> Result<serde_json::Value> {
    let (model, device) = text_model(file, &a.model, "eval beir")?;
    let r = contra::workflow::text::beir(&model, &a.dir, &a.split, &device)?;
    print(a.json, &r, || {
        format!(
            "{} queries of {}: nDCG@10 {:.4}, MRR@10 {:.4}, R@1 {:.4}, R@10 {:.4}, R@100 {:.4}, MAP@100 {:.4}\n",
            r.queries,
            a.dir.display(),
            r.ndcg_at_10,
            r.mrr_at_10,
            r.recall_at_1,
            r.recall_at_10,
            r.recall_at_100,
            r.map_at_100
        )
    });
    Ok(serde_json::to_value(&r).expect("results serialise"))
}

fn zeroshot(a: &Pairs, file: &TrainedFile) -> Result<serde_json::Value> {
    use contra::workflow::clip::{ClipEvaluation, ImageText};
    if !file.recipe.data.is_image_text() {
        return Err(Error::config(
            "eval zeroshot",
            format!(
                "evaluates image-text (CLIP) models; this model's data source is `{}`",
                file.recipe.data.source()
            ),
        ));
    }
    let l: Loaded<ImageText> = a.model.load(file)?;
    let r = ClipEvaluation::of(&l)?;
    print(a.json, &r, || r.to_text());
    Ok(serde_json::to_value(&r).expect("results serialise"))
}

fn pairs(a: &Pairs, file: &TrainedFile) -> Result<serde_json::Value> {
    use contra::workflow::text::{Text, pair_retrieval};
    require_text(file, "eval pairs")?;
    let l: Loaded<Text> = a.model.load(file)?;
    let (learned, raw) = pair_retrieval(&l)?;
    let value = serde_json::json!({"learned": learned, "tfidf": raw});
    print(a.json, &value, || {
        let mut s = format!(
            "pair retrieval: {} test texts against {} distinct positives\n",
            learned.queries, learned.candidates
        );
        s += &format!("{:<12} {:>8} {:>8} {:>8}\n", "", "R@1", "R@10", "MRR@10");
        for (name, r) in [("learned", &learned), ("TF-IDF", &raw)] {
            s += &format!(
                "{name:<12} {:>8.4} {:>8.4} {:>8.4}\n",
                r.recall_at_1, r.recall_at_10, r.mrr_at_10
            );
        }
        s
    });
    Ok(value)
}

fn knn_or_linear<M: Modality>(
    mut l: Loaded<M>,
    a: &Knn,
    linear: bool,
) -> Result<serde_json::Result<serde_json::Value>> {
    if let Some(n) = &a.labels_per_class {
        l.recipe.eval.labels_per_class = n.iter().copied().filter(|&n| n > 0).collect();
    }
    let which = Protocols {
        knn: !linear,
        linear,
        svm: false,
        few_label: !l.recipe.eval.labels_per_class.is_empty(),
    };
    let mut rows = evaluate::compare(&l, which)?;
    rows.retain(|r| {
        r.protocol
            .starts_with(if linear { "linear" } else { "kNN" })
    });
    print(a.json, &rows, || report::table(&rows, M::raw_name()));
    Ok(serde_json::to_value(&rows))
}

fn fewshot<M: Modality>(
    l: &Loaded<M>,
    a: &Fewshot,
) -> Result<serde_json::Result<serde_json::Value>> {
    let budgets = a
        .labels
        .iter()
        .map(|s| s.parse::<Budget>())
        .collect::<Result<Vec<_>>>()?;
    let tune = FinetuneSettings {
        steps: a.finetune_steps,
        batch_size: a.finetune_batch,
        lr: a.finetune_lr,
        encoder_lr: a.encoder_lr,
    };
    eprintln!(
        "embedding {} training and {} ...",
        contra::data::Dataset::len(&l.splits.train),
        l.test_description()
    );
    let started = std::time::Instant::now();
    let table = evaluate::fewshot_table(l, budgets, a.seeds, &tune, |c| {
        if !contra::progress::enabled() {
            return;
        }
        eprintln!(
            "[{:>6.0} s] {:<8} {:<13} {:<12} accuracy {:.4} ± {:.4}",
            started.elapsed().as_secs_f64(),
            c.budget.label(),
            c.protocol,
            c.representation,
            c.accuracy.0,
            c.accuracy.1
        )
    })?;
    let out = a.out.clone().unwrap_or_else(|| l.dir());
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    let (md, json) = (out.join("fewshot.md"), out.join("fewshot.json"));
    contra::checkpoint::write_atomic(&md, table.to_markdown().as_bytes())?;
    contra::checkpoint::write_atomic(&json, table.to_json().as_bytes())?;
    print(a.json, &table, || {
        format!(
            "{}\nwrote {} and {}\n",
            table.to_text(),
            md.display(),
            json.display()
        )
    });
    Ok(serde_json::to_value(&table))
}

fn anomaly<M: Modality>(
    l: &Loaded<M>,
    a: &Anomaly,
) -> Result<serde_json::Result<serde_json::Value>> {
    let normal = match (&a.normal_class, l.recipe.data.default_normal_classes()) {
        (Some(c), _) => c.clone(),
        (None, Some(c)) => c,
        (None, None) => {
            return Err(Error::config(
                "--normal-class",
                "name the normal class(es), or train with data.train_classes",
            ));
        }
    };
    let detector = match (a.mahalanobis, a.k) {
        (true, _) => Detector::Embedding(Scorer::Mahalanobis { eps: 0.01 }),
        (false, Some(k)) => Detector::Embedding(Scorer::Knn { k }),
        (false, None) => Detector::Method,
    };
    let r = evaluate::anomaly(l, &normal, detector)?;
    if let Some(path) = &a.scores {
        evaluate::write_scores(l, &r, path)?;
    }
    print(a.json, &r, || r.table.clone());
    Ok(serde_json::to_value(&r))
}
