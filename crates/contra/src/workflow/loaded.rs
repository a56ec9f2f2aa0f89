//! A trained model with the data its recipe names, ready to evaluate or export.

use super::modality::Modality;
use crate::data::{Dataset, Splits};
use crate::error::{Error, Result};
use crate::eval::report::Embeddings;
use crate::features::Features;
use crate::recipe::Recipe;
use crate::train::TrainedFile;
use burn::prelude::Device;
use std::path::{Path, PathBuf};

/// A trained model of modality `M`, its recipe, the data and the evaluation preprocessing.
pub struct Loaded<M: Modality> {
    pub model: M::Model,
    pub recipe: Recipe,
    pub splits: Splits<M::Dataset>,
    pub prep: M::Prep,
    pub device: Device,
    /// The model file, when the model came from one.
    pub path: Option<PathBuf>,
}

impl<M: Modality> Loaded<M> {
    /// The model in `file` with the data its recipe names (`data_path` overrides where they
    /// are), evaluated on `device`.
    pub fn read(file: &TrainedFile, device: &Device, data_path: Option<&Path>) -> Result<Self> {
        let mut recipe = file.recipe.clone();
        if let Some(p) = data_path {
            recipe.data.set_path(p.to_path_buf())?;
        }
        let splits = M::load(&recipe)?;
        let model = M::read(file, &splits.train, device)?;
        let prep = M::prep(&recipe, &splits, &model)?;
        Ok(Self {
            model,
            recipe,
            splits,
            prep,
            device: device.clone(),
            path: Some(file.path.clone()),
        })
    }

    /// A model just trained from `recipe` on `splits`.
    pub fn trained(
        model: M::Model,
        recipe: &Recipe,
        splits: Splits<M::Dataset>,
        device: &Device,
    ) -> Result<Self> {
        let prep = M::prep(recipe, &splits, &model)?;
        Ok(Self {
            model,
            recipe: recipe.clone(),
            splits,
            prep,
            device: device.clone(),
            path: Some(recipe.out_dir().join("model.safetensors")),
        })
    }

    /// The model's features of `data`.
    pub fn embed(&self, data: &M::Dataset) -> Features {
        M::embed(&self.model, data, &self.prep, &self.device)
    }

    /// The raw-input features of `data`.
    pub fn raw(&self, data: &M::Dataset) -> Features {
        M::raw(data, &self.prep)
    }

    /// Learned and raw features of both splits.
    pub fn embeddings(&self) -> (Embeddings, Embeddings) {
        let (train, test) = (&self.splits.train, &self.splits.test);
        (
            Embeddings {
                train: self.embed(train),
                test: self.embed(test),
            },
            Embeddings {
                train: self.raw(train),
                test: self.raw(test),
            },
        )
    }

    /// The training and test labels, and the number of classes.
    pub fn labels(&self, what: &str) -> Result<(&[u32], &[u32], usize)> {
        Ok((
            self.splits.train.labels_or_err(what)?,
            self.splits.test.labels_or_err(what)?,
            self.splits.num_classes(),
        ))
    }

    /// What the evaluation runs on: `360 test images`, or where the recipe asked for no
    /// held-out split, `80 training images (no held-out test split: data.train_fraction = 1)`.
    pub fn test_description(&self) -> String {
        let n = crate::data::Dataset::len(&self.splits.test);
        let items = M::items(&self.recipe);
        if self.splits.test_is_train {
            format!("{n} training {items} (no held-out test split: data.train_fraction = 1)")
        } else {
            format!("{n} test {items}")
        }
    }

    /// The split named `train` or `test`.
    pub fn split(&self, name: &str) -> Result<&M::Dataset> {
        match name {
            "train" => Ok(&self.splits.train),
            "test" => Ok(&self.splits.test),
            other => Err(Error::config(
                "--split",
                format!("`{other}`; expected train or test"),
            )),
        }
    }

    /// The folder a model's evaluation files go to by default: the model's own.
    pub fn dir(&self) -> PathBuf {
        self.path
            .as_deref()
            .and_then(Path::parent)
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    }
}
