//! The command line on time series: pretraining, and the evaluations and export that read
//! series models (UCR/UEA sets and windows of sensor streams).

use crate::{
    AnomalyArgs, EmbedArgs, FewshotArgs, ModelArgs, detection_table, fewshot_settings,
    finetune_trainers, model_dir, run_fewshot,
};
use contra::data::locate::DataSpec;
use contra::data::locate::load_series;
use contra::data::series::SeriesDataset;
use contra::data::series::SeriesSplits;
use contra::eval::Features;
use contra::eval::anomaly::{Scorer, detect};
use contra::eval::fewshot::{Budget, Representation};
use contra::recipe::Recipe;
use contra::train::series::SeriesModel;
use contra::train::{self, TrainOptions};
use contra::{Error, Result};
use std::path::Path;

/// A trained series model with the series its recipe names.
pub struct Loaded {
    model: SeriesModel,
    recipe: Recipe,
    splits: SeriesSplits,
    device: contra::Device,
}

impl Loaded {
    /// One vector per series of `data`, padded as both splits are.
    fn embed(&self, data: &SeriesDataset) -> Features {
        self.model.embed(data, self.splits.len(), &self.device)
    }

    /// The raw series of `data`, padded as both splits are.
    fn raw(&self, data: &SeriesDataset) -> Features {
        raw(data, self.splits.len())
    }
}

/// The series model in `file` with the series its recipe names (`m` may override the path).
pub fn load(m: &ModelArgs, file: &train::TrainedFile) -> Result<Loaded> {
    let mut recipe = file.recipe.clone();
    if let Some(p) = &m.data_path {
        recipe.data.set_path(p.clone())?;
    }
    let device = contra::device::parse(&m.device)?;
    let splits = load_series(&recipe.data)?;
    let model = SeriesModel::read(file, splits.train.channels, &device)?;
    Ok(Loaded {
        model,
        recipe,
        splits,
        device,
    })
}

/// The raw series as features: every channel's values, padded with 0 to `len` steps (missing
/// values 0 too).
fn raw(data: &SeriesDataset, len: usize) -> Features {
    Features {
        data: (0..data.len())
            .flat_map(|i| data.padded(i, len))
            .map(|v| if v.is_nan() { 0.0 } else { v })
            .collect(),
        rows: data.len(),
        dim: data.channels * len,
    }
}

fn classes(splits: &SeriesSplits) -> usize {
    let max_label = |d: &SeriesDataset| {
        d.labels
            .as_ref()
            .and_then(|l| l.iter().max().map(|&m| m as usize + 1))
            .unwrap_or(0)
    };
    [
        splits.train.class_names.len(),
        splits.test.class_names.len(),
        max_label(&splits.train),
        max_label(&splits.test),
    ]
    .into_iter()
    .max()
    .unwrap_or(0)
}

/// Pretrain on series, then evaluate: a UCR/UEA set the TS2Vec paper's way (an RBF SVM, C by
/// cross-validation, on the frozen embeddings beside the same SVM on the raw series), windows
/// of streams by anomaly detection of the test windows (label above 0) beside raw windows.
pub fn pretrain(recipe: &Recipe, resume: bool, quiet: bool, no_eval: bool) -> Result<()> {
    use contra::eval::{accuracy, svm};
    let splits = load_series(&recipe.data)?;
    let (train_set, test_set) = (&splits.train, &splits.test);
    let out = recipe.out_dir();
    eprintln!(
        "contra pretrain: {} ({} series of {} channels, length {}) -> {}",
        recipe.name,
        train_set.len(),
        train_set.channels,
        train_set.lengths.iter().max().unwrap_or(&0),
        out.display()
    );
    let report =
        contra::workflow::pretrain_series(recipe, train_set, &TrainOptions { resume, quiet })?;
    println!(
        "trained {} steps in {:.1} s: final loss {:.4}, {:.0} windows/s",
        report.steps,
        report.seconds,
        report.final_loss,
        // Two views of every window.
        report.views_per_second / 2.0
    );
    println!("model: {}", out.join("model.safetensors").display());
    if no_eval {
        return Ok(());
    }
    let (Some(yl), Some(yt)) = (train_set.labels.clone(), test_set.labels.clone()) else {
        return Ok(());
    };
    let l = Loaded {
        model: report.model,
        recipe: recipe.clone(),
        device: contra::device::parse(&recipe.train.device)?,
        splits,
    };
    if matches!(recipe.data, DataSpec::Csv(_)) {
        println!();
        print!("{}", anomaly_table(&l, &[0], Scorer::Knn { k: 5 }, None)?);
        return Ok(());
    }
    let (train_set, test_set) = (&l.splits.train, &l.splits.test);
    let classes = classes(&l.splits);
    let svm_accuracy = |tr: &Features, te: &Features| -> Result<(f64, f64)> {
        let (m, c) = svm::fit_cross_validated(tr, &yl, classes, recipe.seed)?;
        Ok((accuracy(&m.predict(te), &yt), c))
    };
    let (learned, c_learned) = svm_accuracy(&l.embed(train_set), &l.embed(test_set))?;
    let equal = train_set
        .lengths
        .iter()
        .chain(&test_set.lengths)
        .all(|&n| n == train_set.lengths[0]);
    println!(
        "\nevaluation on {} test series (SVM, RBF kernel, C by 5-fold cross-validation):",
        test_set.len()
    );
    println!("{:<22}{:>10}{:>13}", "", "learned", "raw series");
    if equal {
        let (r, c_raw) = svm_accuracy(&l.raw(train_set), &l.raw(test_set))?;
        println!("{:<22}{learned:>10.4}{r:>13.4}", "accuracy");
        println!("{:<22}{c_learned:>10}{c_raw:>13}", "C");
    } else {
        println!("{:<22}{learned:>10.4}{:>13}", "accuracy", "-");
    }
    Ok(())
}

/// The few-label table on series: kNN, the linear probe and the TS2Vec paper's SVM on the
/// pretrained encoder, a randomly initialised one and the raw series; and (unless
/// `--finetune-steps 0`) the pretrained encoder fine-tuned with the probe as its starting
/// classifier (LP-FT) beside the same encoder trained from scratch on the labels.
pub fn fewshot(
    a: &FewshotArgs,
    budgets: Vec<Budget>,
    l: &Loaded,
    file: &train::TrainedFile,
) -> Result<()> {
    use contra::eval::{finetune, linear};
    let need = || {
        Error::other(format!(
            "few-label evaluation needs labelled training and test series; {} has none",
            match &l.recipe.data {
                DataSpec::Ucr(u) => u.name.as_str(),
                _ => "this data",
            }
        ))
    };
    let yl = l.splits.train.labels.as_deref().ok_or_else(need)?;
    let yt = l.splits.test.labels.as_deref().ok_or_else(need)?;
    let (train_set, test_set) = (&l.splits.train, &l.splits.test);
    let (len, classes) = (l.splits.len(), classes(&l.splits));
    eprintln!(
        "embedding {} training and {} test series ...",
        train_set.len(),
        test_set.len()
    );
    let (learned_train, learned_test) = (l.embed(train_set), l.embed(test_set));
    // The same architecture, randomly initialised and frozen.
    let mut random_recipe = l.recipe.clone();
    random_recipe.seed ^= 0x5241_4e44;
    let random = SeriesModel::build(&random_recipe, train_set.channels, &l.device)?;
    let (random_train, random_test) = (
        random.embed(train_set, len, &l.device),
        random.embed(test_set, len, &l.device),
    );
    let (raw_train, raw_test) = (l.raw(train_set), l.raw(test_set));
    let reps = [
        Representation {
            name: "pretrained".into(),
            train: &learned_train,
            test: &learned_test,
        },
        Representation {
            name: "random init".into(),
            train: &random_train,
            test: &random_test,
        },
        Representation {
            name: "raw series".into(),
            train: &raw_train,
            test: &raw_test,
        },
    ];
    let settings = fewshot_settings(budgets, a.seeds, &l.recipe, classes, true);
    let ad = l.device.clone().autodiff();
    let test_inputs = finetune::SeriesInputs::new(test_set, len);
    let fit = |encoder, rows: &[usize], y: &[u32], cfg, head: Option<&linear::Probe>| {
        let labelled = train_set.subset(rows);
        let inputs = finetune::SeriesInputs::new(&labelled, len);
        let model = finetune::finetune(encoder, &inputs, y, classes, head, &cfg, &ad)?;
        Ok(finetune::predict(&model, &test_inputs, 256, &l.device))
    };
    let trainers = finetune_trainers(
        a,
        &l.recipe,
        &learned_train,
        classes,
        &l.device,
        Box::new(|| Ok(SeriesModel::read(file, train_set.channels, &ad)?.into_encoder())),
        Box::new(|seed| {
            let mut scratch = l.recipe.clone();
            scratch.seed ^= 0x5343_5241 ^ seed;
            Ok(SeriesModel::build(&scratch, train_set.channels, &ad)?.into_encoder())
        }),
        &fit,
    );
    let out_dir = a.out.clone().unwrap_or_else(|| model_dir(&a.model.model));
    run_fewshot(&settings, yl, yt, &reps, &trainers, &l.device, &out_dir)
}

/// Anomaly detection of series or stream windows: fitted on the normal training items
/// (windows of streams: label 0 unless `--normal-class` says otherwise).
pub fn anomaly(a: &AnomalyArgs, l: &Loaded) -> Result<()> {
    let normal = match (&a.normal_class, &l.recipe.data) {
        (Some(c), _) => c.clone(),
        (None, DataSpec::Csv(_)) => vec![0],
        (None, _) => {
            return Err(Error::config(
                "--normal-class",
                "name the normal class(es) of the series",
            ));
        }
    };
    print!(
        "{}",
        anomaly_table(l, &normal, a.scorer(), a.scores.as_deref())?
    );
    Ok(())
}

/// AUROC, AUPRC and best F1 of the learned embedding beside the raw series (where the test
/// items have labels), and optionally every test item's score as CSV.
fn anomaly_table(
    l: &Loaded,
    normal: &[u32],
    scorer: Scorer,
    scores_out: Option<&Path>,
) -> Result<String> {
    let (train_set, test_set) = (&l.splits.train, &l.splits.test);
    let rows: Vec<usize> = (0..train_set.len())
        .filter(|&i| {
            train_set
                .labels
                .as_ref()
                .is_none_or(|y| normal.contains(&y[i]))
        })
        .collect();
    if rows.is_empty() {
        return Err(Error::config(
            "--normal-class",
            format!("no training item has class {normal:?}"),
        ));
    }
    let anomalous: Option<Vec<bool>> = test_set
        .labels
        .as_ref()
        .map(|y| y.iter().map(|c| !normal.contains(c)).collect());
    let run = |train: Features, test: &Features| {
        detect(
            &train.select(&rows),
            test,
            anomalous.as_deref(),
            scorer,
            &l.device,
        )
    };
    let ours = run(l.embed(train_set), &l.embed(test_set))?;
    let base = run(l.raw(train_set), &l.raw(test_set))?;
    let windows = matches!(l.recipe.data, DataSpec::Csv(_));
    let items = if windows { "windows" } else { "series" };
    if let Some(path) = scores_out {
        let origin = |i: usize| {
            l.splits.test_origins.as_ref().map_or(String::new(), |o| {
                let o = &o[i];
                let time = o.timestamp.as_deref().unwrap_or("");
                format!("{},{},{time}", o.stream, o.first_row)
            })
        };
        let place: Option<crate::Place> =
            windows.then_some(("stream,first_row,timestamp", &origin));
        let labels = test_set.labels.as_deref();
        crate::write_scores(path, &ours.scores, labels, anomalous.as_deref(), place)?;
    }
    let method = match scorer {
        Scorer::Knn { k } => format!("kNN (k={k})"),
        Scorer::Mahalanobis { .. } => "Mahalanobis distance".into(),
    };
    let mut table = format!(
        "anomaly detection of {} test {items} ({} anomalous) by {method} to {} training {items}:\n",
        test_set.len(),
        anomalous
            .as_ref()
            .map_or(0, |a| a.iter().filter(|&&x| x).count()),
        rows.len()
    );
    match (ours.metrics, base.metrics) {
        (Some(a), Some(b)) => table.push_str(&detection_table(&a, &b, &format!("raw {items}"))),
        _ => table.push_str("(the test items have no labels: scores only)\n"),
    }
    Ok(table)
}

/// Embeddings of a split as .npy files and a safetensors index (for `contra search --id`).
pub fn embed(a: &EmbedArgs, l: &Loaded) -> Result<()> {
    let data = match a.split.as_str() {
        "train" => &l.splits.train,
        "test" => &l.splits.test,
        other => {
            return Err(Error::config(
                "--split",
                format!("`{other}`; expected train or test"),
            ));
        }
    };
    let f = l.embed(data);
    crate::write_embeddings(
        a,
        &f,
        data.labels.as_deref(),
        ("contra.data", "series".into()),
    )
}
