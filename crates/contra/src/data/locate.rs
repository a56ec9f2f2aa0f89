//! Finding a data set on disk: the recipe's `path`, then `$CONTRA_DATA/<name>`, then the
//! standard install location of Debian's package (for Fashion-MNIST:
//! `/usr/share/datasets/fashion-mnist`, from `apt-get install dataset-fashion-mnist`).

use super::WindowOrigin;
use super::series::{SeriesDataset, load_archive_set};
use super::{ImageDataset, Splits, cifar, digits, folder, idx};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The `[data]` table of a recipe: `source` names the kind of data set (`digits` when left
/// out), the other keys are its own.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "source", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DataSpec {
    /// The 8x8 digits bundled with contra.
    Digits(ImageSetSpec),
    /// Fashion-MNIST's IDX files.
    FashionMnist(ImageSetSpec),
    /// MNIST's IDX files.
    Mnist(ImageSetSpec),
    /// CIFAR-10's binary batches.
    Cifar10(ImageSetSpec),
    /// A folder of images, one subfolder per class.
    Folder(FolderSpec),
    /// A UCR/UEA archive set of time series.
    Ucr(UcrSpec),
    /// Windows of sensor streams in CSV files.
    Csv(CsvSpec),
    /// Sentences, pairs or labelled sentences from a JSONL, CSV, TSV or text file.
    Text(super::sentences::TextSpec),
    /// WordNet's noun synsets: (gloss, names) pairs labelled by lexicographer file.
    Wordnet(super::wordnet::WordnetSpec),
    /// Images with captions from a captions file.
    Captions(super::captions::CaptionsSpec),
    /// The emoji of `emoji-datasource-twitter`, captioned by their names.
    Emoji(super::captions::EmojiSpec),
    /// A labelled image set captioned from prompt templates.
    ClassCaptions(super::captions::ClassCaptionsSpec),
}

impl Default for DataSpec {
    fn default() -> Self {
        DataSpec::Digits(ImageSetSpec::default())
    }
}

/// A named image data set (`digits`, `fashion-mnist`, `mnist`, `cifar10`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ImageSetSpec {
    /// Folder holding the files; searched for when absent (not for the bundled digits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Use only the first N training images (quick runs and tests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_limit: Option<usize>,
    /// Use only the first N test images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_limit: Option<usize>,
    /// Train only on the items of these classes (one-class anomaly detection: pretrain on
    /// the normal class); the test split stays whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_classes: Option<Vec<u32>>,
}

/// `source = "folder"`: one subfolder of images per class.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FolderSpec {
    /// The training folder (required).
    pub path: PathBuf,
    /// A separate folder of test images, labelled by the same class map (the union of both
    /// folders' class sub-folders).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_path: Option<PathBuf>,
    /// Without `test_path`: the fraction of each class that trains (default 0.8), the rest
    /// held out by `split_seed`; 1 evaluates on the training images, and says so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_fraction: Option<f64>,
    pub split_seed: u64,
    /// Leave out files that do not decode (their count and first names are printed) rather
    /// than stop with an error naming the first.
    pub skip_unreadable: bool,
    /// Channels (1 or 3) and size the images are converted to.
    pub channels: usize,
    pub image_size: usize,
    /// How images that are not square of `image_size` get there: `crop` (the shorter side
    /// scaled, the centre cut out) or `squash`.
    pub resize: folder::Fit,
    /// Read each image from its file when used instead of holding the folder in memory;
    /// by default, when the decoded folder would take more than 1 GiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_limit: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_limit: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_classes: Option<Vec<u32>>,
}

impl Default for FolderSpec {
    fn default() -> Self {
        Self {
            path: PathBuf::new(),
            test_path: None,
            train_fraction: None,
            split_seed: 0,
            skip_unreadable: false,
            channels: 3,
            image_size: 32,
            resize: folder::Fit::Crop,
            stream: None,
            train_limit: None,
            test_limit: None,
            train_classes: None,
        }
    }
}

/// `source = "ucr"`: a set of the UCR/UEA archive.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct UcrSpec {
    /// The set's name (`GunPoint`; required).
    pub name: String,
    /// The folder holding `<name>/` (default `$CONTRA_DATA/ucr`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
}

/// `source = "csv"`: sensor streams (a CSV file or a folder of them) cut into windows.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CsvSpec {
    /// The training file or folder (required); a relative path missing from the working
    /// directory is looked up in the data folder.
    pub path: PathBuf,
    /// The test file or folder; without it, each stream is split in time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_path: Option<PathBuf>,
    /// Which columns are what.
    pub columns: super::stream::CsvColumns,
    /// Window length in rows (required).
    pub window: usize,
    /// Rows between window starts (default: the window length).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stride: Option<usize>,
    /// Without `test_path`: the first fraction of each stream trains, the rest is the test
    /// part (default 0.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_fraction: Option<f64>,
    /// `false`: the training part's labels are not read, so nothing learns or selects from
    /// them: every training window is normal, in training (NCAD's `use_labels` finds no
    /// events) and in the kNN scores' neighbours, as in a run with no labels at all. The
    /// test part's labels still measure the scores. Default `true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_labels: Option<bool>,
}

/// The training subset settings of an image source.
pub struct Subset<'a> {
    pub train_limit: Option<usize>,
    pub test_limit: Option<usize>,
    pub train_classes: Option<&'a [u32]>,
}

impl DataSpec {
    /// The name a recipe gives the source.
    pub fn source(&self) -> &'static str {
        match self {
            DataSpec::Digits(_) => "digits",
            DataSpec::FashionMnist(_) => "fashion-mnist",
            DataSpec::Mnist(_) => "mnist",
            DataSpec::Cifar10(_) => "cifar10",
            DataSpec::Folder(_) => "folder",
            DataSpec::Ucr(_) => "ucr",
            DataSpec::Csv(_) => "csv",
            DataSpec::Text(_) => "text",
            DataSpec::Wordnet(_) => "wordnet",
            DataSpec::Captions(_) => "captions",
            DataSpec::Emoji(_) => "emoji",
            DataSpec::ClassCaptions(_) => "class-captions",
        }
    }

    /// Whether the source holds text.
    pub fn is_text(&self) -> bool {
        matches!(self, DataSpec::Text(_) | DataSpec::Wordnet(_))
    }

    /// Whether the source holds images with captions.
    pub fn is_image_text(&self) -> bool {
        matches!(
            self,
            DataSpec::Captions(_) | DataSpec::Emoji(_) | DataSpec::ClassCaptions(_)
        )
    }

    /// Whether the source holds time series rather than images.
    pub fn is_series(&self) -> bool {
        matches!(self, DataSpec::Ucr(_) | DataSpec::Csv(_))
    }

    /// The subset settings of an image source.
    pub fn subset(&self) -> Option<Subset<'_>> {
        match self {
            DataSpec::Digits(s)
            | DataSpec::FashionMnist(s)
            | DataSpec::Mnist(s)
            | DataSpec::Cifar10(s) => Some(Subset {
                train_limit: s.train_limit,
                test_limit: s.test_limit,
                train_classes: s.train_classes.as_deref(),
            }),
            DataSpec::Folder(s) => Some(Subset {
                train_limit: s.train_limit,
                test_limit: s.test_limit,
                train_classes: s.train_classes.as_deref(),
            }),
            DataSpec::Ucr(_)
            | DataSpec::Csv(_)
            | DataSpec::Text(_)
            | DataSpec::Wordnet(_)
            | DataSpec::Captions(_)
            | DataSpec::Emoji(_)
            | DataSpec::ClassCaptions(_) => None,
        }
    }

    /// The classes training is restricted to (one-class runs).
    pub fn train_classes(&self) -> Option<&[u32]> {
        self.subset().and_then(|s| s.train_classes)
    }

    /// The classes anomaly detection takes as normal without being told: those training is
    /// restricted to (one-class runs), or 0 for windows of sensor streams (label 0: normal).
    pub fn default_normal_classes(&self) -> Option<Vec<u32>> {
        match self {
            DataSpec::Csv(_) => Some(vec![0]),
            _ => self.train_classes().map(<[u32]>::to_vec),
        }
    }

    /// Where the data are (`data.path`), when the recipe says.
    pub fn path(&self) -> Option<&Path> {
        match self {
            DataSpec::Digits(_) => None,
            DataSpec::FashionMnist(s) | DataSpec::Mnist(s) | DataSpec::Cifar10(s) => {
                s.path.as_deref()
            }
            DataSpec::Folder(s) => Some(&s.path),
            DataSpec::Ucr(s) => s.path.as_deref(),
            DataSpec::Csv(s) => Some(&s.path),
            DataSpec::Text(s) => Some(&s.path),
            DataSpec::Wordnet(s) => s.path.as_deref(),
            DataSpec::Captions(s) => Some(&s.path),
            DataSpec::Emoji(s) => s.path.as_deref(),
            DataSpec::ClassCaptions(s) => s.images.path(),
        }
    }

    /// Set `data.path` (the data are elsewhere than the recipe says).
    pub fn set_path(&mut self, path: PathBuf) -> Result<()> {
        match self {
            DataSpec::Digits(_) => {
                return Err(Error::config(
                    "data.path",
                    "the digits are bundled with contra: there is no path to set",
                ));
            }
            DataSpec::FashionMnist(s) | DataSpec::Mnist(s) | DataSpec::Cifar10(s) => {
                s.path = Some(path)
            }
            DataSpec::Folder(s) => s.path = path,
            DataSpec::Ucr(s) => s.path = Some(path),
            DataSpec::Csv(s) => s.path = path,
            DataSpec::Text(s) => s.path = path,
            DataSpec::Wordnet(s) => s.path = Some(path),
            DataSpec::Captions(s) => s.path = path,
            DataSpec::Emoji(s) => s.path = Some(path),
            DataSpec::ClassCaptions(s) => s.images.set_path(path)?,
        }
        Ok(())
    }

    /// Set `data.train_limit`.
    pub fn set_train_limit(&mut self, n: usize) -> Result<()> {
        match self {
            DataSpec::Digits(s)
            | DataSpec::FashionMnist(s)
            | DataSpec::Mnist(s)
            | DataSpec::Cifar10(s) => s.train_limit = Some(n),
            DataSpec::Folder(s) => s.train_limit = Some(n),
            DataSpec::Text(s) => s.train_limit = Some(n),
            DataSpec::Wordnet(s) => s.train_limit = n,
            DataSpec::ClassCaptions(s) => s.images.set_train_limit(n)?,
            DataSpec::Ucr(_) | DataSpec::Csv(_) | DataSpec::Captions(_) | DataSpec::Emoji(_) => {
                return Err(Error::config(
                    "data.train_limit",
                    format!(
                        "applies to images; source `{}` does not use it",
                        self.source()
                    ),
                ));
            }
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<()> {
        match self {
            DataSpec::Digits(s) if s.path.is_some() => Err(Error::config(
                "data.path",
                "the digits are bundled with contra; leave the path out",
            )),
            DataSpec::Folder(s) if s.path.as_os_str().is_empty() => {
                Err(Error::config("data.path", "source `folder` needs a path"))
            }
            DataSpec::Folder(s) if s.channels != 1 && s.channels != 3 => Err(Error::config(
                "data.channels",
                format!("{} channels; expected 1 or 3", s.channels),
            )),
            DataSpec::Folder(s) if s.image_size == 0 => {
                Err(Error::config("data.image_size", "must be at least 1"))
            }
            DataSpec::Folder(s) if s.train_fraction.is_some_and(|f| !(f > 0.0 && f <= 1.0)) => {
                Err(Error::config(
                    "data.train_fraction",
                    "must be above 0 and at most 1 (1: evaluate on the training images)",
                ))
            }
            DataSpec::Folder(s) if s.train_fraction.is_some() && s.test_path.is_some() => {
                Err(Error::config(
                    "data.train_fraction",
                    "splits a folder without data.test_path; with a test folder, leave it out",
                ))
            }
            DataSpec::Ucr(s) if s.name.is_empty() => Err(Error::config(
                "data.name",
                "source `ucr` needs the set's name (GunPoint)",
            )),
            DataSpec::Csv(s) if s.path.as_os_str().is_empty() => Err(Error::config(
                "data.path",
                "source `csv` needs a CSV file or a folder of them",
            )),
            DataSpec::Csv(s) if s.window == 0 => Err(Error::config(
                "data.window",
                "source `csv` needs the window length",
            )),
            DataSpec::Csv(s) if s.stride == Some(0) => {
                Err(Error::config("data.stride", "must be at least 1"))
            }
            DataSpec::Csv(s) if s.train_fraction.is_some_and(|f| !(f > 0.0 && f < 1.0)) => Err(
                Error::config("data.train_fraction", "must be between 0 and 1"),
            ),
            DataSpec::Text(s) => s.validate(),
            DataSpec::Captions(s) => s.validate(),
            DataSpec::Emoji(s) => s.validate(),
            DataSpec::ClassCaptions(s) => s.validate(),
            _ => Ok(()),
        }
    }
}

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
            return Ok(Splits::new(train, test));
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
    spec.validate()?;
    let splits = match spec {
        DataSpec::Digits(_) => digits::splits(),
        DataSpec::FashionMnist(s) | DataSpec::Mnist(s) => {
            idx_splits(spec.source(), s.path.as_deref())?
        }
        DataSpec::Cifar10(s) => {
            let searched = candidates("cifar10", s.path.as_deref());
            let dir = searched
                .iter()
                .find(|d| d.join("test_batch.bin").is_file())
                .ok_or_else(|| Error::NotFound {
                    what: "CIFAR-10 binary batches (test_batch.bin)".into(),
                    searched: searched.clone(),
                })?;
            cifar::read_dir(dir)?
        }
        DataSpec::Folder(s) => folder_splits(s)?,
        DataSpec::Ucr(_) | DataSpec::Csv(_) => {
            return Err(Error::config(
                "data.source",
                format!(
                    "`{}` holds time series: `contra pretrain`, `contra eval fewshot`, `contra eval anomaly` and `contra embed` read them; this command reads images",
                    spec.source()
                ),
            ));
        }
        DataSpec::Text(_) | DataSpec::Wordnet(_) => {
            return Err(Error::config(
                "data.source",
                format!("`{}` holds text; this command reads images", spec.source()),
            ));
        }
        DataSpec::Captions(_) | DataSpec::Emoji(_) | DataSpec::ClassCaptions(_) => {
            return Err(Error::config(
                "data.source",
                format!(
                    "`{}` holds images with captions: it trains with method.kind = \"clip\"",
                    spec.source()
                ),
            ));
        }
    };
    let subset = spec.subset().expect("image sources have subset settings");
    Ok(Splits {
        test_is_train: splits.test_is_train,
        ..Splits::new(
            limit(
                only_classes(splits.train, subset.train_classes)?,
                subset.train_limit,
            ),
            limit(splits.test, subset.test_limit),
        )
    })
}

/// Folders whose decoded images would take more than this are streamed from their files
/// unless `data.stream` says otherwise.
pub const STREAM_ABOVE_BYTES: usize = 1 << 30;

/// A folder's splits: with a test folder, both labelled by one class map (the union of
/// their class folders); without one, `train_fraction` of every class trains (seeded by
/// `split_seed`) and the rest is held out, or with `train_fraction = 1` the test split is the
/// training split, marked so.
fn folder_splits(s: &FolderSpec) -> Result<Splits> {
    let size = s.image_size;
    let mut how = folder::FolderRead {
        fit: s.resize,
        skip_unreadable: s.skip_unreadable,
        ..folder::FolderRead::new(s.channels, size)
    };
    let stream = |images: usize| {
        s.stream
            .unwrap_or(images * s.channels * size * size > STREAM_ABOVE_BYTES)
    };
    if let Some(t) = &s.test_path {
        let (train_images, mut classes) = folder::survey(&s.path)?;
        let (test_images, test_classes) = folder::survey(t)?;
        classes.extend(test_classes);
        classes.sort();
        classes.dedup();
        let classes = (!classes.is_empty()).then_some(classes);
        how.classes = classes.as_deref();
        how.stream = stream(train_images);
        let train = folder::read(&s.path, &how)?;
        how.stream = stream(test_images);
        return Ok(Splits::new(train, folder::read(t, &how)?));
    }
    how.stream = match s.stream {
        Some(stream) => stream,
        None => stream(folder::survey(&s.path)?.0),
    };
    let all = folder::read(&s.path, &how)?;
    let fraction = s.train_fraction.unwrap_or(0.8);
    if fraction >= 1.0 {
        return Ok(Splits {
            test_is_train: true,
            ..Splits::new(all.clone(), all)
        });
    }
    let (train, test) =
        super::sampling::stratified_split(all.labels.as_deref(), all.len, fraction, s.split_seed);
    if test.is_empty() {
        return Err(Error::format(
            &s.path,
            format!(
                "{} images leave none for testing at data.train_fraction = {fraction}; add images, give data.test_path, or set data.train_fraction = 1 to evaluate on the training images",
                all.len
            ),
        ));
    }
    let (train, test) = all.split(&train, &test);
    Ok(Splits::new(train, test))
}

/// The training items of `classes`, or all of them.
fn only_classes(train: ImageDataset, classes: Option<&[u32]>) -> Result<ImageDataset> {
    let Some(classes) = classes else {
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
/// The training and test series a spec names: a UCR/UEA set, or windows of CSV sensor
/// streams (a file or a folder of files; each channel standardised with the training
/// windows' mean and standard deviation, so that sensors on different scales weigh alike).
/// Load the text splits a spec names.
pub fn load_text(spec: &DataSpec) -> Result<Splits<super::sentences::TextDataset>> {
    spec.validate()?;
    match spec {
        DataSpec::Text(s) => s.load(),
        DataSpec::Wordnet(s) => s.load(),
        other => Err(Error::config(
            "data.source",
            format!(
                "`{}` does not hold text; text comes from `text` or `wordnet`",
                other.source()
            ),
        )),
    }
}

/// Load the image-caption splits a spec names.
pub fn load_image_text(spec: &DataSpec) -> Result<Splits<super::captions::ImageTextDataset>> {
    spec.validate()?;
    match spec {
        DataSpec::Captions(s) => s.load(),
        DataSpec::Emoji(s) => s.load(),
        DataSpec::ClassCaptions(s) => s.load(),
        other => Err(Error::config(
            "data.source",
            format!(
                "`{}` has no captions; image-text pairs come from `captions`, `emoji` or `class-captions`",
                other.source()
            ),
        )),
    }
}

pub fn load_series(spec: &DataSpec) -> Result<Splits<SeriesDataset>> {
    spec.validate()?;
    match spec {
        DataSpec::Csv(spec) => load_stream_windows(spec),
        DataSpec::Ucr(spec) => {
            let (train, test) = load_archive_set(&spec.name, spec.path.as_deref())?;
            Ok(Splits::new(train, test))
        }
        other => Err(Error::config(
            "data.source",
            format!(
                "`{}` holds images; time series come from `ucr` or `csv`",
                other.source()
            ),
        )),
    }
}

fn load_stream_windows(spec: &CsvSpec) -> Result<Splits<SeriesDataset>> {
    use super::stream::{Stream, read_csv_path, windows};
    // A relative path missing from the working directory is looked up in the data folder.
    let resolve = |p: &std::path::Path| match data_root() {
        Some(root) if p.is_relative() && !p.exists() => root.join(p),
        _ => p.to_path_buf(),
    };
    let path = &resolve(&spec.path);
    let columns = spec.columns.clone();
    let length = spec.window;
    let stride = spec.stride.unwrap_or(length);
    let streams = read_csv_path(path, &columns)?;
    let (train, test): (Vec<Stream>, Vec<Stream>) = match &spec.test_path {
        Some(t) => (streams, read_csv_path(&resolve(t), &columns)?),
        None => {
            let f = spec.train_fraction.unwrap_or(0.5);
            let cut = |s: &Stream, from: usize, to: usize| Stream {
                group: s.group.clone(),
                channel_names: s.channel_names.clone(),
                channels: s.channels.iter().map(|c| c[from..to].to_vec()).collect(),
                timestamps: s
                    .timestamps
                    .get(from..to)
                    .map(<[String]>::to_vec)
                    .unwrap_or_default(),
                labels: s.labels.as_ref().map(|l| l[from..to].to_vec()),
            };
            streams
                .iter()
                .map(|s| {
                    let at = (s.len() as f64 * f).round() as usize;
                    (cut(s, 0, at), cut(s, at, s.len()))
                })
                .unzip()
        }
    };
    let mut tr = windows(&train, length, stride)?.series;
    if spec.train_labels == Some(false)
        && let Some(labels) = tr.labels.as_mut()
    {
        labels.fill(0);
    }
    let test_windows = windows(&test, length, stride)?;
    // With `train_fraction`, the test part of a stream starts after its training part.
    let offset = |k: usize| {
        train
            .get(k)
            .filter(|_| spec.test_path.is_none())
            .map_or(0, Stream::len)
    };
    let origins = test_windows
        .origins
        .iter()
        .map(|&(k, row)| {
            let s = &test[k];
            WindowOrigin {
                stream: s.group.clone(),
                first_row: offset(k) + row,
                timestamp: s.timestamps.get(row).cloned(),
            }
        })
        .collect();
    let steps: Option<Vec<super::StreamSteps>> = test
        .iter()
        .enumerate()
        .map(|(k, s)| {
            s.labels.as_ref().map(|l| super::StreamSteps {
                stream: s.group.clone(),
                first_row: offset(k),
                anomalous: l.iter().map(|&v| v != 0).collect(),
            })
        })
        .collect();
    let mut te = test_windows.series;
    if tr.is_empty() || te.is_empty() {
        return Err(Error::config(
            "data.window",
            format!("no window of {length} rows fits the training or the test part"),
        ));
    }
    // Both splits name the same classes (0 normal, 1.. events).
    let classes = tr.class_names.len().max(te.class_names.len());
    let names: Vec<String> = (0..classes).map(|c| c.to_string()).collect();
    tr.class_names = names.clone();
    te.class_names = names;
    // Per-channel standardisation with the training windows' statistics.
    for c in 0..tr.channels {
        let vals: Vec<f64> = (0..tr.len())
            .flat_map(|i| tr.channel(i, c).iter().map(|&v| v as f64))
            .filter(|v| v.is_finite())
            .collect();
        let n = vals.len().max(1) as f64;
        let mean = vals.iter().sum::<f64>() / n;
        let sd = (vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n)
            .sqrt()
            .max(1e-12);
        for set in [&mut tr, &mut te] {
            for i in 0..set.len() {
                let len = set.lengths[i];
                set.values[i][c * len..(c + 1) * len]
                    .iter_mut()
                    .for_each(|v| *v = ((*v as f64 - mean) / sd) as f32);
            }
        }
    }
    Ok(Splits {
        test_origins: Some(origins),
        test_steps: steps,
        ..Splits::new(tr, te)
    })
}
