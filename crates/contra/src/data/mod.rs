//! Data sets of images held in memory as 8-bit pixels, and the readers that load them.
//!
//! Every reader returns an [`ImageDataset`]: `n` images of `channels x height x width` bytes in
//! CHW order, with optional class labels. Readers check every size they rely on and name the
//! file and what was wrong when a file is truncated or corrupt.

pub mod cifar;
pub mod digits;
pub mod folder;
pub mod idx;
pub mod locate;
pub mod sampling;
pub mod series;
pub mod stream;

use crate::error::{Error, Result};

/// Images in memory, `u8` pixels in CHW order, all of the same size.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageDataset {
    pub pixels: Vec<u8>,
    pub len: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// One class index per image, when the data are labelled.
    pub labels: Option<Vec<u32>>,
    /// Class names, indexed by label; empty when unknown.
    pub class_names: Vec<String>,
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
            len,
            channels,
            height,
            width,
            labels,
            class_names: Vec::new(),
        })
    }

    pub fn image_size(&self) -> usize {
        self.channels * self.height * self.width
    }

    pub fn image(&self, i: usize) -> &[u8] {
        let s = self.image_size();
        &self.pixels[i * s..(i + 1) * s]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of classes: the largest label plus one, or the number of class names.
    pub fn num_classes(&self) -> usize {
        let from_labels = self
            .labels
            .as_ref()
            .and_then(|l| l.iter().max())
            .map_or(0, |&m| m as usize + 1);
        from_labels.max(self.class_names.len())
    }

    /// The images at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Self {
        let mut pixels = Vec::with_capacity(indices.len() * self.image_size());
        for &i in indices {
            pixels.extend_from_slice(self.image(i));
        }
        let labels = self
            .labels
            .as_ref()
            .map(|l| indices.iter().map(|&i| l[i]).collect());
        Self {
            pixels,
            len: indices.len(),
            channels: self.channels,
            height: self.height,
            width: self.width,
            labels,
            class_names: self.class_names.clone(),
        }
    }

    /// The first `n` images (all of them if there are fewer).
    pub fn take(&self, n: usize) -> Self {
        let idx: Vec<usize> = (0..n.min(self.len)).collect();
        self.subset(&idx)
    }

    pub fn labels_or_err(&self, what: &str) -> Result<&[u32]> {
        self.labels.as_deref().ok_or_else(|| {
            Error::other(format!(
                "{what} needs labelled data, and this data set has no labels"
            ))
        })
    }
}

/// A train split and a test split of one data set.
#[derive(Clone, Debug)]
pub struct Splits {
    pub train: ImageDataset,
    pub test: ImageDataset,
}
