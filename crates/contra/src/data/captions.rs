//! Image-caption pairs for CLIP: images, each with one or more captions (training draws one
//! per epoch), optional labellings for zero-shot classification, and the prompt templates
//! that classification fills with class names.
//!
//! Sources:
//! - `captions`: a captions file (CSV, TSV or JSONL with columns `image` and `caption`, and
//!   optionally `label`) naming images relative to a folder; several rows may name one image;
//! - `emoji`: the emoji of the npm package `emoji-datasource-twitter` (16.0.0): `emoji.json`
//!   and `img/twitter/64/*.png`; training captions from each emoji's name and short names,
//!   test captions its name alone; labelled by category (10) and subcategory (99), which no
//!   caption mentions;
//! - `class-captions`: a labelled image set (Fashion-MNIST, ...) captioned by filling prompt
//!   templates (clip-benchmark's `en_zeroshot_classification_templates.json`) with class
//!   names; the zero-shot templates are left out of the training captions.

use super::folder::{Fit, decode};
use super::locate::{DataSpec, candidates};
use super::sentences::{column, read_table};
use super::{Dataset, ImageDataset, Splits};
use crate::error::{Error, Result};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One labelling of the images, for zero-shot classification by class name.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelSet {
    /// What the labels are (`category`, `subcategory`, `class`).
    pub name: String,
    pub class_names: Vec<String>,
    pub labels: Vec<u32>,
}

/// Images with their captions.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageTextDataset {
    /// The images; their labels are the first label set's.
    pub images: ImageDataset,
    /// Each image's captions (at least one).
    pub captions: Vec<Vec<String>>,
    /// Each image's name (its file, or the emoji's name).
    pub ids: Vec<String>,
    /// Labellings for zero-shot classification (the first is `images.labels`).
    pub label_sets: Vec<LabelSet>,
    /// Zero-shot prompts: `{c}` stands for the class name.
    pub templates: Vec<String>,
    /// Classes of the first labelling that training never sees (left out by
    /// `exclude_classes`): zero-shot evaluation reports them apart.
    pub unseen_classes: Vec<u32>,
}

impl ImageTextDataset {
    /// The distinct captions, sorted (what a frozen text tower embeds once).
    pub fn distinct_captions(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.captions.iter().flatten().map(String::as_str).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

impl Dataset for ImageTextDataset {
    fn len(&self) -> usize {
        self.images.len
    }
    fn labels(&self) -> Option<&[u32]> {
        self.images.labels.as_deref()
    }
    fn class_names(&self) -> &[String] {
        &self.images.class_names
    }
    fn item_names(&self) -> Option<&[String]> {
        Some(&self.ids)
    }
    fn subset(&self, rows: &[usize]) -> Self {
        Self {
            images: self.images.subset(rows),
            captions: rows.iter().map(|&i| self.captions[i].clone()).collect(),
            ids: rows.iter().map(|&i| self.ids[i].clone()).collect(),
            label_sets: self
                .label_sets
                .iter()
                .map(|s| LabelSet {
                    name: s.name.clone(),
                    class_names: s.class_names.clone(),
                    labels: rows.iter().map(|&i| s.labels[i]).collect(),
                })
                .collect(),
            templates: self.templates.clone(),
            unseen_classes: self.unseen_classes.clone(),
        }
    }
}

/// Items held out for testing, by seed: the first `fraction` of a seeded permutation.
fn split<D: Dataset>(data: D, fraction: f64, seed: u64) -> Splits<D> {
    let order = Rng::derive(seed, &[0x4341_5054]).permutation(data.len());
    let n_test = ((data.len() as f64) * fraction).round() as usize;
    let mut test: Vec<usize> = order[..n_test].to_vec();
    let mut train: Vec<usize> = order[n_test..].to_vec();
    test.sort_unstable();
    train.sort_unstable();
    Splits::new(data.subset(&train), data.subset(&test))
}

fn check_fraction(f: f64) -> Result<()> {
    if !(f > 0.0 && f < 1.0) {
        return Err(Error::config(
            "data.test_fraction",
            "must lie strictly between 0 and 1",
        ));
    }
    Ok(())
}

fn check_size(size: usize) -> Result<()> {
    if !(4..=512).contains(&size) {
        return Err(Error::config("data.image_size", "must be 4 to 512 pixels"));
    }
    Ok(())
}

/// An image file as CHW bytes of 3 channels at `size x size` (alpha composited onto white).
fn load_image(path: &Path, size: usize, fit: Fit) -> Result<Vec<u8>> {
    Ok(fit
        .apply(decode(path)?.to_channels(3), size, size)
        .to_bytes())
}

/// Decode every file in parallel; `Err` entries keep their error.
fn load_images(paths: &[PathBuf], size: usize, fit: Fit) -> Vec<Result<Vec<u8>>> {
    use rayon::prelude::*;
    paths.par_iter().map(|p| load_image(p, size, fit)).collect()
}

// ---------------------------------------------------------------------------------------------
// `source = "captions"`

/// `source = "captions"`: a captions file naming images.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CaptionsSpec {
    /// The captions file (`.csv`, `.tsv` or `.jsonl`; columns `image`, `caption`, optional
    /// `label`). Required.
    pub path: PathBuf,
    /// The folder image paths are relative to (default: the captions file's folder).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub images: Option<PathBuf>,
    /// A captions file of test images (default: `test_fraction` of the images, by seed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_path: Option<PathBuf>,
    pub test_fraction: f64,
    pub split_seed: u64,
    /// Images are converted to RGB and brought to this square.
    pub image_size: usize,
    /// How: `crop` (the shorter side scaled, the centre cut out) or `squash`.
    pub resize: Fit,
    /// Skip images that fail to decode (their count and first names are printed) rather than
    /// stop.
    pub skip_unreadable: bool,
    /// Zero-shot prompts (default: the class name alone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub templates: Option<Vec<String>>,
}

impl Default for CaptionsSpec {
    fn default() -> Self {
        Self {
            path: PathBuf::new(),
            images: None,
            test_path: None,
            test_fraction: 0.2,
            split_seed: 0,
            image_size: 32,
            resize: Fit::Crop,
            skip_unreadable: false,
            templates: None,
        }
    }
}

impl CaptionsSpec {
    pub fn validate(&self) -> Result<()> {
        if self.path.as_os_str().is_empty() {
            return Err(Error::config(
                "data.path",
                "source = \"captions\" needs the captions file",
            ));
        }
        check_fraction(self.test_fraction)?;
        check_size(self.image_size)?;
        check_templates(self.templates.as_deref().unwrap_or(&[]))
    }

    pub fn load(&self) -> Result<Splits<ImageTextDataset>> {
        self.validate()?;
        let mut classes = Vec::new();
        let train = self.read(&self.path, &mut classes)?;
        let mut splits = match &self.test_path {
            Some(t) => {
                let test = self.read(t, &mut classes)?;
                Splits::new(train, test)
            }
            None => split(train, self.test_fraction, self.split_seed),
        };
        for d in [&mut splits.train, &mut splits.test] {
            d.images.class_names = classes.clone();
            for s in &mut d.label_sets {
                s.class_names = classes.clone();
            }
        }
        Ok(splits)
    }

    /// One captions file; `classes` gathers the label values in order of first appearance
    /// across files (so train and test share one class map).
    fn read(&self, path: &Path, classes: &mut Vec<String>) -> Result<ImageTextDataset> {
        let (header, rows) = read_table(path)?;
        for needed in ["image", "caption"] {
            if !header.iter().any(|h| h == needed) {
                return Err(Error::format(
                    path,
                    format!("no `{needed}` column; the columns are {header:?}"),
                ));
            }
        }
        let images = column(&rows, "image", path)?;
        let captions = column(&rows, "caption", path)?;
        let labels = header
            .iter()
            .any(|h| h == "label")
            .then(|| column(&rows, "label", path))
            .transpose()?;
        let root = match &self.images {
            Some(r) => r.clone(),
            None => path.parent().map_or_else(PathBuf::new, Path::to_path_buf),
        };
        // Captions grouped by image, images in order of first appearance.
        let mut by_image: BTreeMap<&str, usize> = BTreeMap::new();
        let mut files: Vec<(usize, PathBuf, String)> = Vec::new();
        let mut texts: Vec<Vec<String>> = Vec::new();
        let mut label_of: Vec<Option<u32>> = Vec::new();
        for (r, (line, _)) in rows.iter().enumerate() {
            let (image, caption) = (images[r].trim(), captions[r].trim());
            if image.is_empty() {
                return Err(Error::format(
                    path,
                    format!("line {line}: empty image path"),
                ));
            }
            if caption.is_empty() {
                return Err(Error::format(path, format!("line {line}: empty caption")));
            }
            let i = *by_image.entry(image).or_insert_with(|| {
                files.push((*line, root.join(image), image.to_string()));
                texts.push(Vec::new());
                label_of.push(None);
                files.len() - 1
            });
            texts[i].push(caption.to_string());
            if let Some(l) = &labels {
                let value = l[r].trim().to_string();
                let class = match classes.iter().position(|c| *c == value) {
                    Some(c) => c,
                    None => {
                        classes.push(value);
                        classes.len() - 1
                    }
                } as u32;
                if label_of[i].is_some_and(|prev| prev != class) {
                    return Err(Error::format(
                        path,
                        format!("line {line}: image `{image}` has two labels"),
                    ));
                }
                label_of[i] = Some(class);
            }
        }
        for (line, file, name) in &files {
            if !file.is_file() {
                return Err(Error::format(
                    path,
                    format!(
                        "line {line}: image `{name}` not found (looked for {})",
                        file.display()
                    ),
                ));
            }
        }
        let paths: Vec<PathBuf> = files.iter().map(|(_, p, _)| p.clone()).collect();
        let decoded = load_images(&paths, self.image_size, self.resize);
        let mut keep = Vec::new();
        let mut pixels = Vec::new();
        let mut skipped: Vec<String> = Vec::new();
        for (i, d) in decoded.into_iter().enumerate() {
            match d {
                Ok(bytes) => {
                    pixels.extend_from_slice(&bytes);
                    keep.push(i);
                }
                Err(e) if self.skip_unreadable => {
                    skipped.push(format!("{} ({e})", files[i].2));
                }
                Err(e) => {
                    return Err(Error::format(
                        path,
                        format!(
                            "line {}: image `{}` cannot be read: {e} (set data.skip_unreadable = true to skip such images)",
                            files[i].0, files[i].2
                        ),
                    ));
                }
            }
        }
        if !skipped.is_empty() {
            eprintln!(
                "{}: skipped {} unreadable image(s): {}",
                path.display(),
                skipped.len(),
                skipped
                    .iter()
                    .take(3)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        if keep.is_empty() {
            return Err(Error::format(path, "no readable image"));
        }
        let size = self.image_size;
        let labels: Option<Vec<u32>> = labels.map(|_| {
            keep.iter()
                .map(|&i| label_of[i].expect("labelled"))
                .collect()
        });
        let mut images = ImageDataset::new(pixels, 3, size, size, labels.clone())?;
        images.fit = self.resize;
        Ok(ImageTextDataset {
            images,
            captions: keep.iter().map(|&i| texts[i].clone()).collect(),
            ids: keep.iter().map(|&i| files[i].2.clone()).collect(),
            label_sets: labels
                .map(|labels| LabelSet {
                    name: "label".into(),
                    class_names: Vec::new(),
                    labels,
                })
                .into_iter()
                .collect(),
            templates: self
                .templates
                .clone()
                .unwrap_or_else(|| vec!["{c}".to_string()]),
            unseen_classes: Vec::new(),
        })
    }
}

fn check_templates(templates: &[String]) -> Result<()> {
    if let Some(t) = templates.iter().find(|t| !t.contains("{c}")) {
        return Err(Error::config(
            "data.templates",
            format!("`{t}` has no `{{c}}` for the class name"),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// `source = "emoji"`

/// `source = "emoji"`: the emoji of `emoji-datasource-twitter` 16.0.0.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EmojiSpec {
    /// The unpacked package (holding `emoji.json`; default
    /// `$CONTRA_DATA/emoji-datasource-twitter`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    pub image_size: usize,
    /// Emoji held out for testing, by `split_seed`.
    pub test_fraction: f64,
    pub split_seed: u64,
}

impl Default for EmojiSpec {
    fn default() -> Self {
        Self {
            path: None,
            image_size: 32,
            test_fraction: 0.2,
            split_seed: 0,
        }
    }
}

#[derive(Deserialize)]
struct EmojiEntry {
    name: Option<String>,
    image: String,
    #[serde(default)]
    short_names: Vec<String>,
    category: String,
    subcategory: String,
    #[serde(default)]
    has_img_twitter: bool,
}

/// A short name as words: `red_heart` -> `red heart`.
fn words(name: &str) -> String {
    name.replace(['_', '-'], " ").trim().to_lowercase()
}

impl EmojiSpec {
    pub fn validate(&self) -> Result<()> {
        check_fraction(self.test_fraction)?;
        check_size(self.image_size)
    }

    /// The package folder.
    pub fn folder(&self) -> Result<PathBuf> {
        let searched = candidates("emoji-datasource-twitter", self.path.as_deref());
        searched
            .iter()
            .find(|d| d.join("emoji.json").is_file())
            .cloned()
            .ok_or_else(|| Error::NotFound {
                what: "emoji-datasource-twitter 16.0.0 (emoji.json; unpack `npm pack emoji-datasource-twitter@16.0.0` there, as .ci/run does)".into(),
                searched,
            })
    }

    pub fn load(&self) -> Result<Splits<ImageTextDataset>> {
        self.validate()?;
        let dir = self.folder()?;
        let json_path = dir.join("emoji.json");
        let text = std::fs::read_to_string(&json_path).map_err(|e| Error::io(&json_path, e))?;
        let entries: Vec<EmojiEntry> = serde_json::from_str(&text)
            .map_err(|e| Error::format(&json_path, format!("not the emoji list: {e}")))?;
        let entries: Vec<EmojiEntry> = entries.into_iter().filter(|e| e.has_img_twitter).collect();
        if entries.is_empty() {
            return Err(Error::format(&json_path, "no emoji with a twitter image"));
        }
        let sorted = |f: &dyn Fn(&EmojiEntry) -> &str| {
            let mut v: Vec<String> = entries.iter().map(|e| f(e).to_string()).collect();
            v.sort();
            v.dedup();
            v
        };
        let categories = sorted(&|e| &e.category);
        let subcategories = sorted(&|e| &e.subcategory);
        let index = |names: &[String], v: &str| {
            names
                .binary_search_by(|n| n.as_str().cmp(v))
                .expect("listed") as u32
        };
        let img_dir = dir.join("img/twitter/64");
        let paths: Vec<PathBuf> = entries.iter().map(|e| img_dir.join(&e.image)).collect();
        let mut pixels = Vec::with_capacity(entries.len() * 3 * self.image_size.pow(2));
        for (p, d) in paths
            .iter()
            .zip(load_images(&paths, self.image_size, Fit::Crop))
        {
            let bytes = d.map_err(|e| match e {
                Error::Io { .. } => Error::format(
                    p,
                    "emoji image missing: the package is incomplete (unpack img/twitter/64 too)",
                ),
                e => e,
            })?;
            pixels.extend_from_slice(&bytes);
        }
        let names: Vec<String> = entries
            .iter()
            .map(|e| {
                e.name
                    .as_deref()
                    .map(str::to_lowercase)
                    .unwrap_or_else(|| words(e.short_names.first().map_or("", String::as_str)))
            })
            .collect();
        let captions: Vec<Vec<String>> = entries
            .iter()
            .zip(&names)
            .map(|(e, name)| {
                let mut c = vec![name.clone()];
                for s in &e.short_names {
                    let w = words(s);
                    if !w.is_empty() && !c.contains(&w) {
                        c.push(w);
                    }
                }
                c
            })
            .collect();
        let category: Vec<u32> = entries
            .iter()
            .map(|e| index(&categories, &e.category))
            .collect();
        let subcategory: Vec<u32> = entries
            .iter()
            .map(|e| index(&subcategories, &e.subcategory))
            .collect();
        let size = self.image_size;
        let mut images = ImageDataset::new(pixels, 3, size, size, Some(category.clone()))?;
        images.class_names = categories.clone();
        let all = ImageTextDataset {
            images,
            captions,
            ids: names,
            label_sets: vec![
                LabelSet {
                    name: "category".into(),
                    class_names: categories,
                    labels: category,
                },
                LabelSet {
                    name: "subcategory".into(),
                    class_names: subcategories.iter().map(|s| words(s)).collect(),
                    labels: subcategory,
                },
            ],
            templates: vec!["{c}".into()],
            unseen_classes: Vec::new(),
        };
        let mut splits = split(all, self.test_fraction, self.split_seed);
        // A held-out emoji is asked for by its name alone.
        for c in &mut splits.test.captions {
            c.truncate(1);
        }
        Ok(splits)
    }
}

// ---------------------------------------------------------------------------------------------
// `source = "class-captions"`

/// `source = "class-captions"`: a labelled image set captioned from templates.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClassCaptionsSpec {
    /// The labelled images (`{ source = "fashion-mnist" }`, ...).
    pub images: Box<DataSpec>,
    /// The template set training captions come from (its zero-shot templates removed).
    #[serde(default = "default_train_templates")]
    pub templates: String,
    /// The template set zero-shot classification prompts with.
    #[serde(default = "default_zeroshot_templates")]
    pub zeroshot_templates: String,
    /// The templates file (default
    /// `$CONTRA_DATA/clip-benchmark/en_zeroshot_classification_templates.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templates_path: Option<PathBuf>,
    /// Classes left out of training, images and captions (zero-shot transfer to them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_classes: Vec<String>,
}

fn default_train_templates() -> String {
    "imagenet1k".into()
}
fn default_zeroshot_templates() -> String {
    "cifar10".into()
}

/// The name of a templates file in `$CONTRA_DATA/clip-benchmark/`.
pub const TEMPLATES_FILE: &str = "en_zeroshot_classification_templates.json";

/// A class name as a caption uses it: `Ankle boot` -> `ankle boot`.
pub fn prompt_name(class: &str) -> String {
    class.trim().to_lowercase()
}

impl ClassCaptionsSpec {
    pub fn validate(&self) -> Result<()> {
        if self.images.subset().is_none() || self.images.is_text() {
            return Err(Error::config(
                "data.images",
                format!(
                    "`{}` is not a labelled image set (fashion-mnist, mnist, cifar10, digits or folder)",
                    self.images.source()
                ),
            ));
        }
        self.images.validate()
    }

    fn templates_file(&self) -> Result<PathBuf> {
        if let Some(p) = &self.templates_path {
            return Ok(p.clone());
        }
        let searched: Vec<PathBuf> = candidates("clip-benchmark", None)
            .into_iter()
            .map(|d| d.join(TEMPLATES_FILE))
            .collect();
        searched
            .iter()
            .find(|p| p.is_file())
            .cloned()
            .ok_or_else(|| Error::NotFound {
                what: format!(
                    "clip-benchmark 1.6.2's {TEMPLATES_FILE} (set data.templates_path, or put it in $CONTRA_DATA/clip-benchmark as .ci/run does)"
                ),
                searched,
            })
    }

    /// The training templates and the zero-shot ones.
    pub fn read_templates(&self) -> Result<(Vec<String>, Vec<String>)> {
        let path = self.templates_file()?;
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let sets: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(&text).map_err(|e| {
                Error::format(&path, format!("not a JSON object of template lists: {e}"))
            })?;
        let get = |name: &str, key: &str| -> Result<Vec<String>> {
            let list = sets.get(name).and_then(|v| v.as_array()).ok_or_else(|| {
                Error::config(
                    key,
                    format!(
                        "no template list `{name}` in {}; it has {}",
                        path.display(),
                        sets.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                )
            })?;
            let t: Vec<String> = list
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            check_templates(&t)?;
            Ok(t)
        };
        let zeroshot = get(&self.zeroshot_templates, "data.zeroshot_templates")?;
        let train: Vec<String> = get(&self.templates, "data.templates")?
            .into_iter()
            .filter(|t| !zeroshot.contains(t))
            .collect();
        if train.is_empty() {
            return Err(Error::config(
                "data.templates",
                "every training template is a zero-shot template: none is left to train on",
            ));
        }
        Ok((train, zeroshot))
    }

    pub fn load(&self) -> Result<Splits<ImageTextDataset>> {
        self.validate()?;
        let (train_templates, zeroshot) = self.read_templates()?;
        let splits = super::locate::load_splits(&self.images)?;
        let names: Vec<String> = splits.train.class_names.clone();
        if names.is_empty() || splits.train.labels.is_none() {
            return Err(Error::config(
                "data.images",
                "the images have no class names to caption them with",
            ));
        }
        let excluded: Vec<u32> = self
            .exclude_classes
            .iter()
            .map(|c| {
                names
                    .iter()
                    .position(|n| prompt_name(n) == prompt_name(c))
                    .map(|i| i as u32)
                    .ok_or_else(|| {
                        Error::config(
                            "data.exclude_classes",
                            format!("no class `{c}`; the classes are {names:?}"),
                        )
                    })
            })
            .collect::<Result<_>>()?;
        let caption = |set: ImageDataset, templates: &[String], drop: &[u32]| {
            let labels = set.labels.clone().expect("labelled");
            let keep: Vec<usize> = (0..set.len)
                .filter(|&i| !drop.contains(&labels[i]))
                .collect();
            let set = set.subset(&keep);
            let labels = set.labels.clone().expect("labelled");
            let per_class: Vec<Vec<String>> = names
                .iter()
                .map(|n| {
                    templates
                        .iter()
                        .map(|t| t.replace("{c}", &prompt_name(n)))
                        .collect()
                })
                .collect();
            ImageTextDataset {
                captions: labels
                    .iter()
                    .map(|&l| per_class[l as usize].clone())
                    .collect(),
                ids: (0..set.len).map(|i| keep[i].to_string()).collect(),
                label_sets: vec![LabelSet {
                    name: "class".into(),
                    class_names: names.iter().map(|n| prompt_name(n)).collect(),
                    labels,
                }],
                templates: zeroshot.clone(),
                unseen_classes: excluded.clone(),
                images: set,
            }
        };
        let train = caption(splits.train, &train_templates, &excluded);
        if train.images.is_empty() {
            return Err(Error::config(
                "data.exclude_classes",
                "every training image is excluded",
            ));
        }
        // Test captions use the zero-shot templates' first prompt ("a photo of a {c}.").
        let test = caption(splits.test, &zeroshot[..1], &[]);
        Ok(Splits::new(train, test))
    }
}
