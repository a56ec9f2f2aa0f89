//! Data sets of images held in memory as 8-bit pixels, and the readers that load them.
//!
//! Every reader returns an [`ImageDataset`]: `n` images of `channels x height x width` bytes in
//! CHW order, with optional class labels. Readers check every size they rely on and name the
//! file and what was wrong when a file is truncated or corrupt.

pub mod captions;
pub mod cifar;
pub mod delimited;
pub mod digits;
pub mod folder;
pub mod idx;
pub mod locate;
pub mod sampling;
pub mod sentences;
pub mod series;
pub mod stream;
pub mod text;
pub mod wordnet;

use crate::error::{Error, Result};
use crate::image::Image;
use std::borrow::Cow;

/// Images as `u8` pixels in CHW order, all of the same size: held in memory, or (a folder
/// larger than memory) read from their files each time they are used.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageDataset {
    /// The pixels of every image; empty when the images stream from `files`.
    pub pixels: Vec<u8>,
    /// Where the images are read from when they are not held in memory.
    pub files: Option<folder::ImageFiles>,
    /// How an image of another shape is brought to this size (a streamed image, a query).
    pub fit: folder::Fit,
    pub len: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// One class index per image, when the data are labelled.
    pub labels: Option<Vec<u32>>,
    /// Class names, indexed by label; empty when unknown.
    pub class_names: Vec<String>,
    /// Each image's file, relative to its folder (empty for sets that are not folders).
    pub names: Vec<String>,
}

impl ImageDataset {
    pub fn new(
        pixels: Vec<u8>,
        channels: usize,
        height: usize,
        width: usize,
        labels: Option<Vec<u32>>,
    ) -> Result<Self> {
        let size = channels * height * width;
        if size == 0 || !pixels.len().is_multiple_of(size) {
            return Err(Error::other(format!(
                "{} bytes do not hold whole images of {channels}x{height}x{width}",
                pixels.len()
            )));
        }
        let len = pixels.len() / size;
        if let Some(l) = &labels
            && l.len() != len
        {
            return Err(Error::other(format!("{} labels for {len} images", l.len())));
        }
        Ok(Self {
            pixels,
            ..Self::without_pixels(len, channels, height, width, labels)
        })
    }

    /// A set of `len` images with no pixels or files yet.
    fn without_pixels(
        len: usize,
        channels: usize,
        height: usize,
        width: usize,
        labels: Option<Vec<u32>>,
    ) -> Self {
        Self {
            pixels: Vec::new(),
            len,
            channels,
            height,
            width,
            labels,
            class_names: Vec::new(),
            names: Vec::new(),
            files: None,
            fit: folder::Fit::Crop,
        }
    }

    /// Images read from `files` when used: `channels x height x width` each once fitted.
    pub fn streamed(
        files: folder::ImageFiles,
        channels: usize,
        height: usize,
        width: usize,
        labels: Option<Vec<u32>>,
    ) -> Self {
        let len = files.paths.len();
        Self {
            files: Some(files),
            ..Self::without_pixels(len, channels, height, width, labels)
        }
    }

    /// Whether the images are read from their files when used.
    pub fn is_streamed(&self) -> bool {
        self.files.is_some()
    }

    pub fn image_size(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Image `i`'s pixels at the set's size. A streamed image is decoded and fitted here; a
    /// file that stopped decoding after the load checked it gives a grey image and a warning
    /// (training itself stops on such a file: [`ImageDataset::source_image`]).
    pub fn image(&self, i: usize) -> Cow<'_, [u8]> {
        let Some(files) = &self.files else {
            let s = self.image_size();
            return Cow::Borrowed(&self.pixels[i * s..(i + 1) * s]);
        };
        match files.read(i, self.channels) {
            Ok(img) => Cow::Owned(self.fit.apply(img, self.height, self.width).to_bytes()),
            Err(e) => {
                eprintln!("warning: {e}; a grey image stands in for it");
                Cow::Owned(vec![128; self.image_size()])
            }
        }
    }

    /// Image `i` as training views start from: the stored pixels, or a streamed image at its
    /// full decoded size (so that a random crop is cut before the image shrinks).
    pub fn source_image(&self, i: usize) -> Result<Image> {
        match &self.files {
            None => Ok(self.fitted_image(i)),
            Some(files) => files.read(i, self.channels),
        }
    }

    /// Image `i` at the set's size, values in [0, 1].
    pub fn fitted_image(&self, i: usize) -> Image {
        Image::from_bytes(&self.image(i), self.channels, self.height, self.width)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The images at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Self {
        let mut pixels = Vec::new();
        if !self.is_streamed() {
            pixels.reserve(indices.len() * self.image_size());
            for &i in indices {
                pixels.extend_from_slice(&self.image(i));
            }
        }
        Self {
            pixels,
            ..self.subset_meta(indices)
        }
    }

    /// The set cut in two: the images at `first`, then those at `second`, which together
    /// hold every index once. Pixels in memory are reordered in place, so the cut needs room
    /// for the second part only, not a second copy of the set.
    pub fn split(mut self, first: &[usize], second: &[usize]) -> (Self, Self) {
        let order: Vec<usize> = first.iter().chain(second).copied().collect();
        debug_assert_eq!(order.len(), self.len);
        let (a, b) = (self.subset_meta(first), self.subset_meta(second));
        let size = self.image_size();
        if self.is_streamed() || self.pixels.is_empty() {
            return (a, b);
        }
        // Slot p takes image order[p]: follow each cycle with one image held aside.
        let mut placed = vec![false; order.len()];
        let mut held = vec![0u8; size];
        for start in 0..order.len() {
            if placed[start] || order[start] == start {
                continue;
            }
            held.copy_from_slice(&self.pixels[start * size..(start + 1) * size]);
            let mut slot = start;
            loop {
                placed[slot] = true;
                let from = order[slot];
                if from == start {
                    self.pixels[slot * size..(slot + 1) * size].copy_from_slice(&held);
                    break;
                }
                self.pixels
                    .copy_within(from * size..(from + 1) * size, slot * size);
                slot = from;
            }
        }
        let tail = self.pixels.split_off(first.len() * size);
        self.pixels.shrink_to_fit();
        (
            Self {
                pixels: self.pixels,
                ..a
            },
            Self { pixels: tail, ..b },
        )
    }

    /// The labels, names and files of the images at `indices`, without their pixels.
    fn subset_meta(&self, indices: &[usize]) -> Self {
        Self {
            labels: self
                .labels
                .as_ref()
                .map(|l| indices.iter().map(|&i| l[i]).collect()),
            class_names: self.class_names.clone(),
            names: if self.names.is_empty() {
                Vec::new()
            } else {
                indices.iter().map(|&i| self.names[i].clone()).collect()
            },
            files: self.files.as_ref().map(|f| f.subset(indices)),
            fit: self.fit,
            ..Self::without_pixels(indices.len(), self.channels, self.height, self.width, None)
        }
    }

    /// The first `n` images (all of them if there are fewer).
    pub fn take(&self, n: usize) -> Self {
        let idx: Vec<usize> = (0..n.min(self.len)).collect();
        self.subset(&idx)
    }
}

/// A train split and a test split of one data set, of images or of any other kind of item.
#[derive(Clone, Debug)]
pub struct Splits<D = ImageDataset> {
    pub train: D,
    pub test: D,
    /// Where each test item comes from, where the data say (windows of streams).
    pub test_origins: Option<Vec<WindowOrigin>>,
    /// The test part of each labelled stream, row by row (per-step anomaly metrics).
    pub test_steps: Option<Vec<StreamSteps>>,
    /// The test split is the training split (asked for: `data.train_fraction = 1`); every
    /// evaluation says so.
    pub test_is_train: bool,
}

impl<D> Splits<D> {
    /// Two splits with no origins.
    pub fn new(train: D, test: D) -> Self {
        Self {
            train,
            test,
            test_origins: None,
            test_steps: None,
            test_is_train: false,
        }
    }
}

impl<D: Dataset> Splits<D> {
    /// Classes of either split.
    pub fn num_classes(&self) -> usize {
        self.train.num_classes().max(self.test.num_classes())
    }
}

impl Splits<series::SeriesDataset> {
    /// The longest series of either split: the length both are padded to for evaluation.
    pub fn max_len(&self) -> usize {
        self.train.max_len().max(self.test.max_len())
    }
}

/// The rows of a stream's test part and which of them are anomalous (label not 0).
#[derive(Clone, Debug, PartialEq)]
pub struct StreamSteps {
    /// The stream's name, as its windows' [`WindowOrigin::stream`].
    pub stream: String,
    /// The first test row within the stream.
    pub first_row: usize,
    pub anomalous: Vec<bool>,
}

/// Where a window of a stream starts.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowOrigin {
    /// The stream's name: its group, or its file in a folder.
    pub stream: String,
    /// The window's first row within its stream (0-based).
    pub first_row: usize,
    /// That row's timestamp, where the CSV has a timestamp column.
    pub timestamp: Option<String>,
}

/// A data set split of any kind of item, as evaluation sees it.
pub trait Dataset: Clone + Send + Sync + 'static {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// One class index per item, when the data are labelled.
    fn labels(&self) -> Option<&[u32]>;
    /// Class names, indexed by label; empty when unknown.
    fn class_names(&self) -> &[String];
    /// The items at `rows`, in that order.
    fn subset(&self, rows: &[usize]) -> Self;
    /// What each item is called where the data name it (an image's file), for embeddings and
    /// search results.
    fn item_names(&self) -> Option<&[String]> {
        None
    }
    /// Number of classes: the largest label plus one, or the number of class names.
    fn num_classes(&self) -> usize {
        let from_labels = self
            .labels()
            .and_then(|l| l.iter().max())
            .map_or(0, |&m| m as usize + 1);
        from_labels.max(self.class_names().len())
    }
    fn labels_or_err(&self, what: &str) -> Result<&[u32]> {
        self.labels().ok_or_else(|| {
            Error::other(format!(
                "{what} needs labelled data, and this data set has no labels"
            ))
        })
    }
}

impl Dataset for ImageDataset {
    fn len(&self) -> usize {
        self.len
    }
    fn labels(&self) -> Option<&[u32]> {
        self.labels.as_deref()
    }
    fn class_names(&self) -> &[String] {
        &self.class_names
    }
    fn subset(&self, rows: &[usize]) -> Self {
        ImageDataset::subset(self, rows)
    }
    fn item_names(&self) -> Option<&[String]> {
        (!self.names.is_empty()).then_some(&self.names[..])
    }
}

impl Dataset for series::SeriesDataset {
    fn len(&self) -> usize {
        self.values.len()
    }
    fn labels(&self) -> Option<&[u32]> {
        self.labels.as_deref()
    }
    fn class_names(&self) -> &[String] {
        &self.class_names
    }
    fn subset(&self, rows: &[usize]) -> Self {
        series::SeriesDataset::subset(self, rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_in_place_equals_the_two_subsets() {
        let set = digits::load().take(57);
        let mut rng = crate::rng::Rng::new(4);
        let order = rng.permutation(57);
        let (first, second) = order.split_at(40);
        let (a, b) = set.clone().split(first, second);
        assert_eq!(a, set.subset(first));
        assert_eq!(b, set.subset(second));
        // In order, and with one side empty.
        let all: Vec<usize> = (0..57).collect();
        let (a, b) = set.clone().split(&all, &[]);
        assert_eq!((a, b.len), (set.clone(), 0));
    }
}
