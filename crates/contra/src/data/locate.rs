//! Finding a data set on disk: the recipe's `path`, then `$CONTRA_DATA/<name>`, then the
//! standard install location of Debian's package (for Fashion-MNIST:
//! `/usr/share/datasets/fashion-mnist`, from `apt-get install dataset-fashion-mnist`).

use super::{ImageDataset, Splits, cifar, digits, folder, idx};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Which data set a recipe uses and where it is.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// `digits` (bundled), `fashion-mnist`, `mnist`, `cifar10` or `folder`; or `ucr`, a
    /// UCR/UEA archive set of time series.
    pub source: String,
    /// For `ucr`: the set's name (`GunPoint`); `path` is the folder holding `<name>/`
    /// (default `$CONTRA_DATA/ucr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// For `csv` (sensor streams: `path` the training file, `test_path` the test file): which
    /// columns are what.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<super::stream::CsvColumns>,
    /// For `csv`: window length and stride in rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stride: Option<usize>,
    /// For `csv` without `test_path`: the first fraction of each stream trains, the rest is
    /// the test part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_fraction: Option<f64>,
    /// Folder holding the files; searched for when absent.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// For `folder`: a separate folder of test images (labelled like the training folder).
    #[serde(default)]
    pub test_path: Option<PathBuf>,
    /// For `folder`: channels (1 or 3) and size the images are converted to.
    #[serde(default)]
    pub channels: Option<usize>,
    #[serde(default)]
    pub image_size: Option<usize>,
    /// Use only the first N training images (quick runs and tests).
    #[serde(default)]
    pub train_limit: Option<usize>,
    /// Use only the first N test images.
    #[serde(default)]
    pub test_limit: Option<usize>,
    /// Train only on the items of these classes (one-class anomaly detection: pretrain on
    /// the normal class); the test split stays whole.
    #[serde(default)]
    pub train_classes: Option<Vec<u32>>,
}

impl Default for DataSpec {
    fn default() -> Self {
        Self {
            source: "digits".into(),
            path: None,
            test_path: None,
            channels: None,
            image_size: None,
            train_limit: None,
            test_limit: None,
            train_classes: None,
            name: None,
            columns: None,
            window: None,
            stride: None,
            train_fraction: None,
        }
    }
}

impl DataSpec {
    /// Whether the source holds time series rather than images.
    pub fn is_series(&self) -> bool {
        matches!(self.source.as_str(), "ucr" | "csv")
    }
}

const SOURCES: &str =
    "digits, fashion-mnist, mnist, cifar10, folder (images), ucr, csv (time series)";

/// The data folder: `$CONTRA_DATA`, else `~/.cache/contra-data` where it exists (where
/// `.ci/run` and `tools/get-wsn.sh` put data by default).
pub fn data_root() -> Option<PathBuf> {
    if let Some(root) = std::env::var_os("CONTRA_DATA") {
        return Some(PathBuf::from(root));
    }
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cache/contra-data"))
        .filter(|p| p.is_dir())
}

/// The folders searched for a named data set, in order.
pub fn candidates(name: &str, explicit: Option<&Path>) -> Vec<PathBuf> {
    let mut c = Vec::new();
    if let Some(p) = explicit {
        c.push(p.to_path_buf());
        return c;
    }
    if let Some(root) = data_root() {
        c.push(root.join(name));
    }
    if name == "fashion-mnist" {
        c.push(PathBuf::from("/usr/share/datasets/fashion-mnist"));
    }
    c
}

/// A file in `dir` with any of the given names, raw or gzipped.
fn find_file(dir: &Path, names: &[&str]) -> Option<PathBuf> {
    for n in names {
        for suffix in ["", ".gz"] {
            let p = dir.join(format!("{n}{suffix}"));
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

fn idx_splits(name: &str, explicit: Option<&Path>) -> Result<Splits> {
    let searched = candidates(name, explicit);
    let files = [
        ["train-images-idx3-ubyte", "train-images.idx3-ubyte"],
        ["train-labels-idx1-ubyte", "train-labels.idx1-ubyte"],
        ["t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"],
        ["t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"],
    ];
    for dir in &searched {
        let found: Vec<Option<PathBuf>> = files.iter().map(|n| find_file(dir, n)).collect();
        if found.iter().all(Option::is_some) {
            let f: Vec<PathBuf> = found.into_iter().map(Option::unwrap).collect();
            let mut train = idx::read_labelled(&f[0], &f[1])?;
            let mut test = idx::read_labelled(&f[2], &f[3])?;
            let names = class_names(name);
            train.class_names = names.clone();
            test.class_names = names;
            return Ok(Splits { train, test });
        }
        if dir.is_dir() && found.iter().any(Option::is_some) {
            let missing: Vec<&str> = files
                .iter()
                .zip(&found)
                .filter(|(_, f)| f.is_none())
                .map(|(n, _)| n[0])
                .collect();
            return Err(Error::format(
                dir,
                format!(
                    "{name} folder is incomplete: missing {}",
                    missing.join(", ")
                ),
            ));
        }
    }
    let hint = if name == "fashion-mnist" {
        " (install it with `apt-get install dataset-fashion-mnist`, or set `path` in the recipe or $CONTRA_DATA)"
    } else {
        " (set `path` in the recipe, or put the four IDX files in $CONTRA_DATA/<name>)"
    };
    Err(Error::NotFound {
        what: format!("{name} IDX files{hint}"),
        searched,
    })
}

fn class_names(name: &str) -> Vec<String> {
    let names: &[&str] = match name {
        "fashion-mnist" => &[
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ],
        _ => &["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
    };
    names.iter().map(|s| s.to_string()).collect()
}

fn limit(set: ImageDataset, n: Option<usize>) -> ImageDataset {
    match n {
        Some(n) if n < set.len => set.take(n),
        _ => set,
    }
}

/// Load the train and test splits a spec names.
pub fn load_splits(spec: &DataSpec) -> Result<Splits> {
    let explicit = spec.path.as_deref();
    let splits = match spec.source.as_str() {
        "digits" => digits::splits(),
        "fashion-mnist" | "mnist" => idx_splits(&spec.source, explicit)?,
        "cifar10" => {
            let searched = candidates("cifar10", explicit);
            let dir = searched
                .iter()
                .find(|d| d.join("test_batch.bin").is_file())
                .ok_or_else(|| Error::NotFound {
                    what: "CIFAR-10 binary batches (test_batch.bin)".into(),
                    searched: searched.clone(),
                })?;
            cifar::read_dir(dir)?
        }
        "folder" => {
            let path = explicit
                .ok_or_else(|| Error::config("data.path", "source `folder` needs a path"))?;
            let channels = spec.channels.unwrap_or(3);
            if channels != 1 && channels != 3 {
                return Err(Error::config(
                    "data.channels",
                    format!("{channels} channels; expected 1 or 3"),
                ));
            }
            let size = spec.image_size.unwrap_or(32);
            let train = folder::read_folder(path, channels, size, size)?;
            let test = match &spec.test_path {
                Some(t) => folder::read_folder(t, channels, size, size)?,
                None => train.clone(),
            };
            Splits { train, test }
        }
        "ucr" | "csv" => {
            return Err(Error::config(
                "data.source",
                format!(
                    "`{}` holds time series: `contra pretrain`, `contra eval fewshot`, `contra eval anomaly` and `contra embed` read them; this command reads images",
                    spec.source
                ),
            ));
        }
        other => {
            return Err(Error::config(
                "data.source",
                format!("unknown source `{other}`; expected one of {SOURCES}"),
            ));
        }
    };
    Ok(Splits {
        train: limit(only_classes(splits.train, spec)?, spec.train_limit),
        test: limit(splits.test, spec.test_limit),
    })
}

/// The training items of `spec.train_classes`, or all of them.
fn only_classes(train: ImageDataset, spec: &DataSpec) -> Result<ImageDataset> {
    let Some(classes) = &spec.train_classes else {
        return Ok(train);
    };
    let Some(labels) = &train.labels else {
        return Err(Error::config(
            "data.train_classes",
            "the training data have no labels to select classes by",
        ));
    };
    let keep: Vec<usize> = (0..train.len)
        .filter(|&i| classes.contains(&labels[i]))
        .collect();
    if keep.is_empty() {
        return Err(Error::config(
            "data.train_classes",
            format!("no training item has class {classes:?}"),
        ));
    }
    Ok(train.subset(&keep))
}
