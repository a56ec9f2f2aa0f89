//! The few-label protocol: "how much does my pretrained encoder help with the labels I have?"
//!
//! For each label budget (N labels per class, or a fraction of each class) and each seed, the
//! same labelled training items are drawn for every contender; each is scored on the whole
//! test set by accuracy and macro-F1, and the table reports mean and sample standard
//! deviation over the seeds. Contenders are frozen representations (the pretrained encoder,
//! a randomly initialised one, the raw inputs) evaluated with kNN and the linear probe, and
//! trained networks (the pretrained encoder fine-tuned, the same encoder trained from scratch)
//! given as [`Trainer`]s.

use super::{Features, accuracy, knn, linear, macro_f1};
pub use crate::data::sampling::{Budget, sample, sample_per_class};
use crate::error::{Error, Result};
use burn::prelude::Device;
use serde::{Deserialize, Serialize};

/// Mean and sample standard deviation.
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (m, var.sqrt())
}

/// Frozen features of the training and test items.
pub struct Representation<'a> {
    /// Column of the table: `pretrained`, `random init`, `raw inputs`.
    pub name: String,
    pub train: &'a Features,
    pub test: &'a Features,
}

/// A network trained on the labelled items: given their training-split rows, their labels and
/// the seed, it returns a class for every test item.
pub struct Trainer<'a> {
    /// Column of the table: `pretrained` (fine-tuned) or `from scratch`.
    pub name: String,
    pub run: Box<TrainFn<'a>>,
}

/// (labelled training rows, their labels, seed) -> a class for every test item.
pub type TrainFn<'a> = dyn Fn(&[usize], &[u32], u64) -> Result<Vec<u32>> + 'a;
type PredictFn<'a> = dyn FnMut(&[usize], &[u32], u64) -> Result<Vec<u32>> + 'a;

#[derive(Clone, Debug)]
pub struct Settings {
    pub budgets: Vec<Budget>,
    pub seeds: u64,
    pub knn_k: usize,
    pub knn_temperature: f32,
    pub probe: linear::ProbeConfig,
    pub num_classes: usize,
    /// Also score an RBF SVM with C by cross-validation (the TS2Vec protocol for series).
    pub svm: bool,
}

/// One contender's scores over the seeds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Cell {
    pub budget: Budget,
    /// `kNN`, `linear probe` or `fine-tuning`.
    pub protocol: String,
    pub representation: String,
    pub accuracy: (f64, f64),
    pub macro_f1: (f64, f64),
    /// Per seed: (seed, accuracy, macro-F1).
    pub runs: Vec<(u64, f64, f64)>,
}

/// The whole table.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Table {
    pub seeds: u64,
    pub test_items: usize,
    /// Labelled items per budget (equal for every seed).
    pub labelled: Vec<(Budget, usize)>,
    pub cells: Vec<Cell>,
}

pub const KNN: &str = "kNN";
pub const PROBE: &str = "linear probe";
pub const FINETUNE: &str = "fine-tuning";
pub const SVM: &str = "SVM (RBF)";

/// Run every contender on every budget and seed. `progress` hears each finished cell.
pub fn run(
    settings: &Settings,
    train_labels: &[u32],
    test_labels: &[u32],
    representations: &[Representation],
    trainers: &[Trainer],
    device: &Device,
    mut progress: impl FnMut(&Cell),
) -> Result<Table> {
    if settings.seeds == 0 {
        return Err(Error::config("seeds", "must be at least 1"));
    }
    let classes = settings.num_classes;
    let mut cells = Vec::new();
    let mut labelled = Vec::new();
    for &budget in &settings.budgets {
        let draws: Vec<Vec<usize>> = (0..settings.seeds)
            .map(|seed| sample(train_labels, classes, budget, seed))
            .collect();
        labelled.push((budget, draws[0].len()));
        let mut score = |protocol: &str, name: &str, f: &mut PredictFn| -> Result<()> {
            let mut runs = Vec::new();
            for (seed, rows) in draws.iter().enumerate() {
                let y: Vec<u32> = rows.iter().map(|&i| train_labels[i]).collect();
                let pred = f(rows, &y, seed as u64)?;
                runs.push((
                    seed as u64,
                    accuracy(&pred, test_labels),
                    macro_f1(&pred, test_labels, classes),
                ));
            }
            let acc: Vec<f64> = runs.iter().map(|r| r.1).collect();
            let f1: Vec<f64> = runs.iter().map(|r| r.2).collect();
            let cell = Cell {
                budget,
                protocol: protocol.into(),
                representation: name.into(),
                accuracy: mean_std(&acc),
                macro_f1: mean_std(&f1),
                runs,
            };
            progress(&cell);
            cells.push(cell);
            Ok(())
        };
        for rep in representations {
            score(KNN, &rep.name, &mut |rows, y, _| {
                Ok(knn::predict(
                    &rep.train.select(rows),
                    y,
                    rep.test,
                    classes,
                    settings.knn_k,
                    settings.knn_temperature,
                    device,
                ))
            })?;
        }
        for rep in representations {
            score(PROBE, &rep.name, &mut |rows, y, seed| {
                let cfg = linear::ProbeConfig {
                    seed,
                    ..settings.probe.clone()
                };
                Ok(linear::fit_predict(
                    &rep.train.select(rows),
                    y,
                    rep.test,
                    classes,
                    &cfg,
                    device,
                ))
            })?;
        }
        for rep in representations.iter().filter(|_| settings.svm) {
            score(SVM, &rep.name, &mut |rows, y, seed| {
                let (svm, _) =
                    super::svm::fit_cross_validated(&rep.train.select(rows), y, classes, seed)?;
                Ok(svm.predict(rep.test))
            })?;
        }
        for t in trainers {
            score(FINETUNE, &t.name, &mut |rows, y, seed| {
                (t.run)(rows, y, seed)
            })?;
        }
    }
    Ok(Table {
        seeds: settings.seeds,
        test_items: test_labels.len(),
        labelled,
        cells,
    })
}

impl Table {
    /// Column names in order of first appearance.
    fn columns(&self) -> Vec<String> {
        let mut cols: Vec<String> = Vec::new();
        for c in &self.cells {
            if !cols.contains(&c.representation) {
                cols.push(c.representation.clone());
            }
        }
        cols
    }

    /// (budget, protocol) rows in order, each with a cell per column.
    fn grid(&self) -> Vec<(Budget, String, Vec<Option<&Cell>>)> {
        let cols = self.columns();
        let mut rows: Vec<(Budget, String, Vec<Option<&Cell>>)> = Vec::new();
        for c in &self.cells {
            let j = cols.iter().position(|x| *x == c.representation).unwrap();
            match rows
                .iter_mut()
                .find(|r| r.0 == c.budget && r.1 == c.protocol)
            {
                Some(r) => r.2[j] = Some(c),
                None => {
                    let mut v = vec![None; cols.len()];
                    v[j] = Some(c);
                    rows.push((c.budget, c.protocol.clone(), v));
                }
            }
        }
        rows
    }

    fn cell_text(c: Option<&Cell>) -> String {
        c.map_or("-".into(), |c| {
            format!(
                "{:.4} ± {:.4} ({:.4})",
                c.accuracy.0, c.accuracy.1, c.macro_f1.0
            )
        })
    }

    fn caption(&self) -> String {
        format!(
            "accuracy mean ± sd over {} seeds (mean macro-F1) on {} test items",
            self.seeds, self.test_items
        )
    }

    /// Aligned plain text for the terminal.
    pub fn to_text(&self) -> String {
        let cols = self.columns();
        let grid = self.grid();
        let w = 28;
        let mut s = format!("{}\n", self.caption());
        s += &format!("{:<10}{:<14}", "labels", "protocol");
        cols.iter().for_each(|c| s += &format!("{c:>w$}"));
        s.push('\n');
        for (budget, protocol, cells) in &grid {
            s += &format!("{:<10}{:<14}", budget.label(), protocol);
            cells
                .iter()
                .for_each(|c| s += &format!("{:>w$}", Self::cell_text(*c)));
            s.push('\n');
        }
        s
    }

    /// The caption, the header and one row of cells per (budget, protocol); the best mean
    /// accuracy of each row with more than one contender marked with `best`.
    pub fn rows(&self, best: impl Fn(String) -> String) -> (String, Vec<String>, Vec<Vec<String>>) {
        let cols = self.columns();
        let mut header = vec!["labels".to_string(), "protocol".to_string()];
        header.extend(cols.iter().cloned());
        let rows = self
            .grid()
            .into_iter()
            .map(|(budget, protocol, cells)| {
                let labelled = self
                    .labelled
                    .iter()
                    .find(|l| l.0 == budget)
                    .map_or(0, |l| l.1);
                let top = cells
                    .iter()
                    .flatten()
                    .map(|c| c.accuracy.0)
                    .fold(f64::NEG_INFINITY, f64::max);
                let contenders = cells.iter().flatten().count();
                let mut row = vec![format!("{} ({labelled})", budget.label()), protocol];
                row.extend(cells.iter().map(|c| {
                    let t = Self::cell_text(*c);
                    match c {
                        Some(c) if c.accuracy.0 == top && contenders > 1 => best(t),
                        _ => t,
                    }
                }));
                row
            })
            .collect();
        (self.caption(), header, rows)
    }

    /// A Markdown table; the best mean accuracy of each budget and protocol in bold.
    pub fn to_markdown(&self) -> String {
        let (caption, header, rows) = self.rows(|t| format!("**{t}**"));
        let mut s = format!("{caption}.\n\n| {} |\n|---|---|", header.join(" | "));
        (2..header.len()).for_each(|_| s += "---:|");
        s.push('\n');
        for r in rows {
            s += &format!("| {} |\n", r.join(" | "));
        }
        s
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a table serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use std::cell::RefCell;

    #[test]
    fn samples_n_per_class_reproducibly() {
        let labels: Vec<u32> = (0..100).map(|i| i % 4).collect();
        let a = sample_per_class(&labels, 4, 3, 7);
        assert_eq!(a.len(), 12);
        for c in 0..4 {
            assert_eq!(a.iter().filter(|&&i| labels[i] == c).count(), 3);
        }
        assert_eq!(a, sample_per_class(&labels, 4, 3, 7));
        assert_ne!(a, sample_per_class(&labels, 4, 3, 8));
        // A larger budget keeps the smaller one's items.
        let b = sample_per_class(&labels, 4, 5, 7);
        assert!(a.iter().all(|i| b.contains(i)));
        let (m, s) = mean_std(&[1.0, 2.0, 3.0]);
        assert!((m - 2.0).abs() < 1e-12 && (s - 1.0).abs() < 1e-12);
    }

    #[test]
    fn fractions_take_a_share_of_every_class() {
        let labels: Vec<u32> = (0..300)
            .map(|i| if i < 200 { 0 } else { 1 + i % 2 })
            .collect();
        let s = sample(&labels, 3, Budget::Fraction(0.1), 0);
        let count = |c| s.iter().filter(|&&i| labels[i] == c).count();
        assert_eq!((count(0), count(1), count(2)), (20, 5, 5));
        assert_eq!("10%".parse::<Budget>().unwrap(), Budget::Fraction(0.1));
        assert_eq!("0.01".parse::<Budget>().unwrap(), Budget::Fraction(0.01));
        assert_eq!("5".parse::<Budget>().unwrap(), Budget::PerClass(5));
        for bad in ["0", "-1", "150%", "x", "1.5"] {
            assert!(bad.parse::<Budget>().is_err(), "{bad}");
        }
    }

    #[test]
    fn every_contender_sees_the_same_labels_and_cells_are_scored() {
        // Two separable classes in 2-d; a "trainer" that records what it was given and
        // predicts class 0 everywhere.
        let mut rng = Rng::new(3);
        let make = |n: usize, rng: &mut Rng| {
            let mut data = Vec::new();
            let mut y = Vec::new();
            for i in 0..n {
                let c = (i % 2) as u32;
                data.push((4.0 * c as f64 - 2.0 + 0.3 * rng.normal()) as f32);
                data.push((1.0 + 0.3 * rng.normal()) as f32);
                y.push(c);
            }
            (
                Features {
                    data,
                    rows: n,
                    dim: 2,
                },
                y,
            )
        };
        let (train, yl) = make(60, &mut rng);
        let (test, yt) = make(40, &mut rng);
        let seen = RefCell::new(Vec::new());
        let trainer = Trainer {
            name: "from scratch".into(),
            run: Box::new(|rows, y, seed| {
                seen.borrow_mut().push((rows.to_vec(), y.to_vec(), seed));
                Ok(vec![0; 40])
            }),
        };
        let settings = Settings {
            budgets: vec![Budget::PerClass(3)],
            seeds: 2,
            knn_k: 3,
            knn_temperature: 0.1,
            probe: linear::ProbeConfig::default(),
            num_classes: 2,
            svm: true,
        };
        let reps = [Representation {
            name: "raw inputs".into(),
            train: &train,
            test: &test,
        }];
        let table = run(
            &settings,
            &yl,
            &yt,
            &reps,
            &[trainer],
            &crate::device::parse("cpu").unwrap(),
            |_| {},
        )
        .unwrap();
        let seen = seen.into_inner();
        assert_eq!(seen.len(), 2);
        for (rows, y, seed) in &seen {
            assert_eq!(rows, &sample_per_class(&yl, 2, 3, *seed));
            assert_eq!(y, &rows.iter().map(|&i| yl[i]).collect::<Vec<_>>());
        }
        assert_eq!(table.cells.len(), 4);
        let knn = &table.cells[0];
        assert_eq!((knn.protocol.as_str(), knn.accuracy.0), (KNN, 1.0));
        let svm = &table.cells[2];
        assert_eq!((svm.protocol.as_str(), svm.accuracy.0), (SVM, 1.0));
        let constant = &table.cells[3];
        assert_eq!(constant.accuracy, (0.5, 0.0));
        // Macro-F1 of a constant prediction on balanced classes: (2/3 + 0) / 2.
        assert!((constant.macro_f1.0 - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(table.labelled, vec![(Budget::PerClass(3), 6)]);
        let md = table.to_markdown();
        assert!(
            md.contains("| 3/class (6) | kNN | 1.0000 ± 0.0000 (1.0000) | - |"),
            "{md}"
        );
        assert!(
            md.contains("| 3/class (6) | fine-tuning | - | 0.5000 ± 0.0000 (0.3333) |"),
            "{md}"
        );
        let json: serde_json::Value = serde_json::from_str(&table.to_json()).unwrap();
        assert_eq!(json["cells"][2]["runs"].as_array().unwrap().len(), 2);
    }
}
