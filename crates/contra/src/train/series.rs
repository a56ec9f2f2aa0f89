//! Models trained on time series: TS2Vec, or an instance method (SimCLR, MoCo, ...) with the
//! TS2Vec encoder.

use super::{TrainedFile, build_model};
use crate::data::series::SeriesDataset;
use crate::encoders::EncoderSpec;
use crate::encoders::ts2vec::Ts2VecEncoder;
use crate::error::{Error, Result};
use crate::features::Features;
use crate::methods::ts2vec::Ts2Vec;
use crate::methods::{MethodSpec, Model};
use crate::recipe::Recipe;
use crate::seeding::seeded;
use burn::prelude::Device;

/// A model trained on series.
#[allow(clippy::large_enum_variant)] // one model per run
pub enum SeriesModel {
    Ts2Vec(Ts2Vec),
    /// An instance method whose encoder is the TS2Vec encoder.
    Instance(Model),
}

impl SeriesModel {
    /// The encoder that evaluation and export use: TS2Vec's averaged weights, or the
    /// instance method's encoder.
    pub fn encoder(&self) -> &Ts2VecEncoder {
        match self {
            SeriesModel::Ts2Vec(m) => &m.average,
            SeriesModel::Instance(m) => {
                use crate::methods::Method;
                m.encoder()
                    .series()
                    .expect("series recipes are validated to use the ts2vec encoder")
            }
        }
    }

    /// One vector per series (the encoder over each whole series padded to `len` steps,
    /// max-pooled over time).
    pub fn embed(&self, data: &SeriesDataset, len: usize, device: &Device) -> Features {
        crate::methods::ts2vec::embed(self.encoder(), data, len, 64, device)
    }

    /// The encoder that evaluation uses, taken out of the model and trainable (for
    /// fine-tuning: TS2Vec's average is kept out of the gradient while it is pretrained).
    pub fn into_encoder(self) -> crate::encoders::Encoder {
        use burn::module::Module;
        match self {
            SeriesModel::Ts2Vec(m) => {
                crate::encoders::Encoder::Ts2Vec(m.average.set_require_grad(true))
            }
            SeriesModel::Instance(m) => crate::methods::Method::into_encoder(m),
        }
    }

    /// The model of `recipe`, freshly initialised from its seed, for series of `channels`.
    pub fn build(recipe: &Recipe, channels: usize, device: &Device) -> Result<Self> {
        let MethodSpec::Ts2vec(method) = &recipe.method else {
            return Ok(SeriesModel::Instance(build_model(
                recipe, channels, device,
            )?));
        };
        let EncoderSpec::Ts2vec(cfg) = &recipe.encoder else {
            return Err(Error::config(
                "encoder.kind",
                "the ts2vec method needs the ts2vec encoder",
            ));
        };
        Ok(SeriesModel::Ts2Vec(seeded(device, recipe.seed, || {
            method.init(cfg.init(channels, device), cfg.init(channels, device))
        })))
    }

    /// A trained series model from its file.
    pub fn read(file: &TrainedFile, channels: usize, device: &Device) -> Result<Self> {
        Ok(match Self::build(&file.recipe, channels, device)? {
            SeriesModel::Ts2Vec(m) => SeriesModel::Ts2Vec(file.load(m)?),
            SeriesModel::Instance(m) => SeriesModel::Instance(file.load(m)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::module_tensors;
    use crate::eval::finetune::{FinetuneConfig, SeriesInputs, finetune};

    /// Fine-tuning moves the encoder of either kind of series model.
    #[test]
    fn the_encoder_taken_out_for_fine_tuning_trains() {
        let device = crate::device::parse("cpu").unwrap().autodiff();
        let data = SeriesDataset {
            channels: 1,
            values: (0..8)
                .map(|i| (0..20).map(|t| ((i * t) as f32 * 0.3).sin()).collect())
                .collect(),
            lengths: vec![20; 8],
            labels: Some(vec![0, 1, 0, 1, 0, 1, 0, 1]),
            class_names: vec!["a".into(), "b".into()],
        };
        for method in ["ts2vec", "simclr"] {
            let mut recipe = Recipe::parse(
                &format!(
                    "[data]\nsource = \"ucr\"\nname = \"x\"\n[encoder]\nkind = \"ts2vec\"\nhidden = 4\noutput = 6\ndepth = 1\n[method]\nkind = \"{method}\"\n{}[optimizer]\nlr = 0.1\n",
                    if method == "simclr" {
                        "[[augment.series]]\nop = \"jitter\"\nsigma = 0.1\n"
                    } else {
                        ""
                    }
                ),
                std::path::Path::new("t.toml"),
            )
            .unwrap();
            recipe.seed = 1;
            let encoder = SeriesModel::build(&recipe, 1, &device)
                .unwrap()
                .into_encoder();
            let before = module_tensors(&encoder);
            let cfg = FinetuneConfig {
                steps: 3,
                batch_size: 4,
                lr: 0.01,
                encoder_lr: 0.01,
                ..Default::default()
            };
            let labels = data.labels.clone().unwrap();
            let inputs = std::sync::Arc::new(SeriesInputs::new(data.clone(), 20));
            let tuned = finetune(encoder, inputs, &labels, 2, None, &cfg, &device).unwrap();
            let after = module_tensors(&tuned.encoder);
            let moved = before
                .iter()
                .filter(|(k, t)| after[*k].data != t.data)
                .count();
            assert!(moved > 0, "{method}: no encoder weight changed");
        }
    }
}
