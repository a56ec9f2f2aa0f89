//! The seam where a kind of data plugs in. A [`Modality`] says how its data sets load, how a
//! model of it pretrains and is read from a file, how items become features (learned, and the
//! raw-input baseline), and what fine-tuning feeds the encoder. Every workflow (pretraining,
//! the few-label table, anomaly detection, retrieval, export, the report) is written once,
//! generic over it.
//!
//! Images and time series implement it here. A new kind brings its dataset type, its model
//! type (any number of encoders: text has one, image-text pairs two), its preprocessing and
//! those functions; its views or batches come from its own [`BatchSource`] and its methods
//! train on the one loop through [`Trainable`].
//!
//! [`BatchSource`]: crate::augment::loader::BatchSource
//! [`Trainable`]: crate::methods::Trainable

use crate::augment::Normalize;
use crate::data::series::SeriesDataset;
use crate::data::{Dataset, ImageDataset, Splits};
use crate::encoders::{Backbone, Encoder};
use crate::error::Result;
use crate::eval::finetune::{ImageInputs, Inputs, SeriesInputs};
use crate::features::Features;
use crate::methods::{Method, Model};
use crate::recipe::Recipe;
use crate::seeding::try_seeded;
use crate::train::series::SeriesModel;
use crate::train::{TrainOptions, TrainReport, TrainedFile};
use burn::prelude::Device;
use std::sync::Arc;

/// A kind of data contra learns from.
pub trait Modality: 'static {
    /// One split of the data.
    type Dataset: Dataset;
    /// A trained model: the method's networks.
    type Model;
    /// The network evaluation embeds with and fine-tuning trains.
    type Encoder: Backbone;
    /// What evaluation does to every input, fixed by the recipe and the training data.
    type Prep: Clone;

    /// What its items are called (`images`, `series`, `windows`).
    fn items(recipe: &Recipe) -> &'static str;
    /// A line about a split: how many items, of what shape.
    fn describe(data: &Self::Dataset) -> String;
    /// The raw-input baseline's name (`raw pixels`, `raw series`).
    fn raw_name() -> &'static str;
    /// Whether the few-label table adds the RBF SVM (the TS2Vec protocol for series).
    fn svm() -> bool {
        false
    }

    /// The training and test splits the recipe names.
    fn load(recipe: &Recipe) -> Result<Splits<Self::Dataset>>;
    /// The preprocessing of evaluation inputs (text takes its tokenizer from the model).
    fn prep(
        recipe: &Recipe,
        splits: &Splits<Self::Dataset>,
        model: &Self::Model,
    ) -> Result<Self::Prep>;

    /// Pretrain the recipe's method on `train`.
    fn pretrain(
        recipe: &Recipe,
        train: &Self::Dataset,
        opts: &TrainOptions,
    ) -> Result<TrainReport<Self::Model>>;
    /// The trained model in a model file, for data like `data`.
    fn read(file: &TrainedFile, data: &Self::Dataset, device: &Device) -> Result<Self::Model>;
    /// The encoder evaluation uses, taken out of the model and trainable (fine-tuning).
    fn into_encoder(model: Self::Model) -> Self::Encoder;
    /// A freshly initialised encoder of the recipe's architecture (the random-init baseline,
    /// and fine-tuning from scratch), drawn from `seed`.
    fn random_encoder(
        recipe: &Recipe,
        data: &Self::Dataset,
        prep: &Self::Prep,
        seed: u64,
        device: &Device,
    ) -> Result<Self::Encoder>;

    /// The model's features of every item (inference mode).
    fn embed(
        model: &Self::Model,
        data: &Self::Dataset,
        prep: &Self::Prep,
        device: &Device,
    ) -> Features;
    /// An encoder's features of every item (inference mode).
    fn embed_with(
        encoder: &Self::Encoder,
        data: &Self::Dataset,
        prep: &Self::Prep,
        device: &Device,
    ) -> Features;
    /// The method's own anomaly detector, where it has one (CSI): its name and the scores of
    /// `test` (higher: more anomalous) fitted on `normal`. `None`: the embedding is scored by
    /// distances.
    fn own_anomaly_scores(
        _model: &Self::Model,
        _normal: &Self::Dataset,
        _test: &Self::Dataset,
        _prep: &Self::Prep,
        _device: &Device,
    ) -> Result<Option<(String, Vec<f64>)>> {
        Ok(None)
    }
    /// The raw inputs as features: the baseline every evaluation prints beside the learned.
    fn raw(data: &Self::Dataset, prep: &Self::Prep) -> Features;
    /// What fine-tuning feeds the encoder: training views and plain inputs.
    fn finetune_inputs(
        data: Self::Dataset,
        prep: &Self::Prep,
    ) -> Result<Arc<dyn Inputs<Input<Self>>>>;
    /// Metadata an embedding index keeps: how its items became encoder input.
    fn index_metadata(data: &Self::Dataset, prep: &Self::Prep) -> (String, String);
    /// The kind's own evaluation after training, as printed (CLIP: zero-shot
    /// classification and cross-modal retrieval); empty when it has none.
    fn own_evaluation(_: &super::Loaded<Self>) -> Result<String>
    where
        Self: Sized,
    {
        Ok(String::new())
    }
}

/// The input type of a modality's encoder.
pub type Input<M> = <<M as Modality>::Encoder as Backbone>::Input;

/// A freshly initialised encoder of the recipe's `[encoder]` for data of `channels` channels.
fn random_cnn(recipe: &Recipe, channels: usize, seed: u64, device: &Device) -> Result<Encoder> {
    try_seeded(device, seed, || recipe.encoder.init(channels, device))
}

/// Images: the training normalisation at the training size.
#[derive(Clone, Debug)]
pub struct ImagePrep {
    pub normalize: Option<Normalize>,
    /// The encoder's input size (height, width).
    pub size: (usize, usize),
}

impl ImagePrep {
    /// What the training `pipeline` does to images like `images` at evaluation: its
    /// normalisation, at its output size.
    pub fn of(pipeline: &crate::augment::Pipeline, images: &ImageDataset) -> Self {
        Self {
            normalize: pipeline.normalization().cloned(),
            size: pipeline.output_size(images.height, images.width),
        }
    }
}

/// How the items of an image index became encoder input (so that a query image gets the
/// same treatment).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct InputRecipe {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub input_size: (usize, usize),
    pub normalize: Option<Normalize>,
    /// How a query image of another shape is brought to `height x width` (indexes written
    /// before this was kept squashed).
    #[serde(default = "squash")]
    pub fit: crate::data::folder::Fit,
}

fn squash() -> crate::data::folder::Fit {
    crate::data::folder::Fit::Squash
}

impl InputRecipe {
    /// How images like `images` become encoder input under `prep`.
    pub fn of(images: &ImageDataset, prep: &ImagePrep) -> Self {
        Self {
            channels: images.channels,
            height: images.height,
            width: images.width,
            input_size: prep.size,
            normalize: prep.normalize.clone(),
            fit: images.fit,
        }
    }

    /// The metadata key an index or model file keeps it under.
    pub const META_KEY: &str = "contra.input";

    /// The metadata entry of an index or model file that keeps it.
    pub fn metadata(&self) -> (String, String) {
        (
            Self::META_KEY.into(),
            serde_json::to_string(self).expect("serialisable"),
        )
    }

    /// An image file as a one-image set, converted and resized as the index's items were.
    pub fn read_image(&self, path: &std::path::Path) -> Result<ImageDataset> {
        let img = crate::data::folder::decode(path)?.to_channels(self.channels);
        let img = self.fit.apply(img, self.height, self.width);
        ImageDataset::new(img.to_bytes(), self.channels, self.height, self.width, None)
    }
}

/// Images (`data.source` = digits, fashion-mnist, mnist, cifar10 or folder).
pub struct Images;

impl Modality for Images {
    type Dataset = ImageDataset;
    type Model = Model;
    type Encoder = Encoder;
    type Prep = ImagePrep;

    fn items(_: &Recipe) -> &'static str {
        "images"
    }
    fn describe(data: &ImageDataset) -> String {
        format!(
            "{} images {}x{}x{}{}",
            data.len,
            data.channels,
            data.height,
            data.width,
            if data.is_streamed() {
                ", read from their files as used"
            } else {
                ""
            }
        )
    }
    fn raw_name() -> &'static str {
        "raw pixels"
    }
    fn load(recipe: &Recipe) -> Result<Splits<ImageDataset>> {
        crate::data::locate::load_splits(&recipe.data)
    }
    fn prep(recipe: &Recipe, splits: &Splits<ImageDataset>, _: &Model) -> Result<ImagePrep> {
        Ok(ImagePrep::of(
            &recipe.pipeline(&splits.train)?,
            &splits.train,
        ))
    }
    fn pretrain(
        recipe: &Recipe,
        train: &ImageDataset,
        opts: &TrainOptions,
    ) -> Result<TrainReport<Model>> {
        super::pretrain(recipe, train, opts)
    }
    fn read(file: &TrainedFile, data: &ImageDataset, device: &Device) -> Result<Model> {
        file.model(data.channels, device)
    }
    fn into_encoder(model: Model) -> Encoder {
        model.into_encoder()
    }
    fn random_encoder(
        recipe: &Recipe,
        data: &ImageDataset,
        _: &ImagePrep,
        seed: u64,
        device: &Device,
    ) -> Result<Encoder> {
        random_cnn(recipe, data.channels, seed, device)
    }
    fn embed(model: &Model, data: &ImageDataset, prep: &ImagePrep, device: &Device) -> Features {
        Self::embed_with(model.encoder(), data, prep, device)
    }
    fn own_anomaly_scores(
        model: &Model,
        normal: &ImageDataset,
        test: &ImageDataset,
        prep: &ImagePrep,
        device: &Device,
    ) -> Result<Option<(String, Vec<f64>)>> {
        let Model::Csi(csi) = model else {
            return Ok(None);
        };
        use crate::eval::shifted::{csi_scores, encode_shifted, shifted_knn_scores};
        use crate::methods::csi::CsiScore;
        let encode =
            |data| encode_shifted(csi, data, prep.normalize.as_ref(), prep.size, 512, device);
        let shifts = csi.shifts.len();
        Ok(match csi.score {
            CsiScore::Knn => None,
            CsiScore::KnnShifts => Some((
                format!("kNN (k=5) under each of {shifts} shifts, averaged"),
                shifted_knn_scores(&encode(normal), &encode(test), 5, device),
            )),
            CsiScore::Csi => Some((
                format!(
                    "CSI (norm-weighted cosine to the nearest normal item and the shift classifier, over {shifts} shifts)"
                ),
                csi_scores(&encode(normal), &encode(test), device)?,
            )),
        })
    }
    fn embed_with(
        encoder: &Encoder,
        data: &ImageDataset,
        prep: &ImagePrep,
        device: &Device,
    ) -> Features {
        crate::eval::features::encode(
            encoder,
            data,
            prep.normalize.as_ref(),
            prep.size,
            512,
            device,
        )
    }
    fn raw(data: &ImageDataset, prep: &ImagePrep) -> Features {
        crate::eval::features::raw(data, prep.normalize.as_ref())
    }
    fn finetune_inputs(data: ImageDataset, prep: &ImagePrep) -> Result<Arc<dyn Inputs>> {
        Ok(Arc::new(ImageInputs::new(
            data,
            prep.size,
            prep.normalize.clone(),
        )?))
    }
    fn index_metadata(data: &ImageDataset, prep: &ImagePrep) -> (String, String) {
        InputRecipe::of(data, prep).metadata()
    }
}

/// Series: both splits padded to the longest series of either.
#[derive(Clone, Debug)]
pub struct SeriesPrep {
    pub len: usize,
}

/// Time series (`data.source` = ucr, or csv for windows of sensor streams).
pub struct Series;

impl Modality for Series {
    type Dataset = SeriesDataset;
    type Model = SeriesModel;
    type Encoder = Encoder;
    type Prep = SeriesPrep;

    fn items(recipe: &Recipe) -> &'static str {
        match recipe.data {
            crate::data::locate::DataSpec::Csv(_) => "windows",
            _ => "series",
        }
    }
    fn describe(data: &SeriesDataset) -> String {
        format!(
            "{} series of {} channels, length {}",
            data.len(),
            data.channels,
            data.max_len()
        )
    }
    fn raw_name() -> &'static str {
        "raw series"
    }
    fn svm() -> bool {
        true
    }
    fn load(recipe: &Recipe) -> Result<Splits<SeriesDataset>> {
        crate::data::locate::load_series(&recipe.data)
    }
    fn prep(_: &Recipe, splits: &Splits<SeriesDataset>, _: &SeriesModel) -> Result<SeriesPrep> {
        Ok(SeriesPrep {
            len: splits.max_len(),
        })
    }
    fn pretrain(
        recipe: &Recipe,
        train: &SeriesDataset,
        opts: &TrainOptions,
    ) -> Result<TrainReport<SeriesModel>> {
        super::pretrain_series(recipe, train, opts)
    }
    fn read(file: &TrainedFile, data: &SeriesDataset, device: &Device) -> Result<SeriesModel> {
        SeriesModel::read(file, data.channels, device)
    }
    fn into_encoder(model: SeriesModel) -> Encoder {
        model.into_encoder()
    }
    fn random_encoder(
        recipe: &Recipe,
        data: &SeriesDataset,
        _: &SeriesPrep,
        seed: u64,
        device: &Device,
    ) -> Result<Encoder> {
        random_cnn(recipe, data.channels, seed, device)
    }
    fn embed(
        model: &SeriesModel,
        data: &SeriesDataset,
        prep: &SeriesPrep,
        device: &Device,
    ) -> Features {
        model.embed(data, prep.len, device)
    }
    fn embed_with(
        encoder: &Encoder,
        data: &SeriesDataset,
        prep: &SeriesPrep,
        device: &Device,
    ) -> Features {
        let encoder = encoder
            .series()
            .expect("series recipes are validated to use the ts2vec encoder");
        crate::methods::ts2vec::embed(encoder, data, prep.len, 64, device)
    }
    fn own_anomaly_scores(
        model: &SeriesModel,
        _normal: &SeriesDataset,
        test: &SeriesDataset,
        _prep: &SeriesPrep,
        device: &Device,
    ) -> Result<Option<(String, Vec<f64>)>> {
        let SeriesModel::Instance(Model::Ncad(ncad)) = model else {
            return Ok(None);
        };
        if ncad.settings.score == crate::methods::ncad::NcadScore::Knn {
            return Ok(None);
        }
        Ok(Some((
            format!(
                "NCAD (each window's distance to its context, the last {} steps suspect)",
                ncad.settings.suspect
            ),
            ncad.window_scores(test, 64, device),
        )))
    }
    fn raw(data: &SeriesDataset, prep: &SeriesPrep) -> Features {
        crate::eval::features::raw_series(data, prep.len)
    }
    fn finetune_inputs(data: SeriesDataset, prep: &SeriesPrep) -> Result<Arc<dyn Inputs>> {
        Ok(Arc::new(SeriesInputs::new(data, prep.len)))
    }
    fn index_metadata(_: &SeriesDataset, _: &SeriesPrep) -> (String, String) {
        ("contra.data".into(), "series".into())
    }
}

/// A workflow to run on whichever modality a recipe trains on.
pub trait ForModality {
    type Output;
    fn run<M: Modality>(self) -> Self::Output;
}

/// Run `f` on the recipe's modality.
pub fn dispatch<F: ForModality>(recipe: &Recipe, f: F) -> F::Output {
    if recipe.data.is_text() {
        f.run::<super::text::Text>()
    } else if recipe.data.is_image_text() {
        f.run::<super::clip::ImageText>()
    } else if recipe.data.is_series() {
        f.run::<Series>()
    } else {
        f.run::<Images>()
    }
}
