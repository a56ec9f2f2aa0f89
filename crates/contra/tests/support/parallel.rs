//! What the data-parallel tests share (`data_parallel.rs` on thread ranks, `mpi.rs` on MPI
//! ranks): small networks on the bundled digits, batches and their shares, and flattened
//! gradients and weights to compare.
#![allow(dead_code)] // each test file uses its part

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use contra::augment::loader::{BatchSource, ImageViews, ViewBatch};
use contra::data::digits;
use contra::dist;
use contra::encoders::{EncoderSpec, SmallCnnConfig};
use contra::methods::{MethodSpec, Model};
use contra::recipe::Recipe;
use contra::train::loader_config;
use std::sync::Arc;

/// A recipe whose networks have no BatchNorm: every item's features depend on it alone.
pub fn recipe(method: MethodSpec, batch_size: usize) -> Recipe {
    with_batch_norm(method, batch_size, false)
}

/// The same networks with BatchNorm in the encoder and the head (synchronised across ranks).
pub fn with_batch_norm(method: MethodSpec, batch_size: usize, batch_norm: bool) -> Recipe {
    let mut r = Recipe::default_recipe();
    r.encoder = EncoderSpec::SmallCnn(SmallCnnConfig {
        widths: [8, 8, 16, 16],
        batch_norm,
    });
    r.head.batch_norm = batch_norm;
    r.head.hidden_dim = 32;
    r.head.output_dim = 16;
    r.method = method;
    // The default recipe's rate (0.3 at batch 256) scaled down towards these small batches.
    r.optimizer = contra::optim::OptimizerSpec::Sgd(contra::optim::SgdConfig {
        lr: 0.05,
        ..Default::default()
    });
    r.train.batch_size = batch_size;
    r.train.workers = 1;
    r
}

pub fn source(recipe: &Recipe, items: usize) -> Arc<ImageViews> {
    let train = digits::splits().train.take(items);
    let pipeline = recipe.pipeline(&train).unwrap();
    Arc::new(ImageViews {
        data: train,
        pipeline,
    })
}

pub fn autodiff() -> Device {
    contra::device::parse("cpu").unwrap().autodiff()
}

/// Every parameter's gradient, in the model's order (zeros where it has none).
pub fn flat_gradients(model: &Model, grads: &GradientsParams) -> Vec<f32> {
    struct Flat<'a>(&'a GradientsParams, Vec<f32>);
    impl ModuleVisitor for Flat<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            match self.0.get::<D>(param.id) {
                Some(g) => self.1.extend(contra::tensor_util::to_vec(g)),
                None => {
                    let n: usize = param.val().dims().iter().product();
                    self.1.extend(std::iter::repeat_n(0.0, n));
                }
            }
        }
    }
    let mut flat = Flat(grads, Vec::new());
    model.visit(&mut flat);
    flat.1
}

/// Every tensor the model file keeps (MoCo's queue included), in key order.
pub fn flat_weights(model: &Model) -> Vec<f32> {
    contra::checkpoint::module_tensors(model)
        .into_values()
        .flat_map(|t| t.data)
        .collect()
}

/// The largest difference relative to the largest magnitude. (Losses compare relative to
/// max(|loss|, 1): BYOL's is near zero.)
pub fn relative_difference(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f64, |m, &x| m.max(x.abs() as f64));
    let diff = a
        .iter()
        .zip(b)
        .fold(0f64, |m, (&x, &y)| m.max((x as f64 - y as f64).abs()));
    diff / scale.max(1e-30)
}

/// The first global batch of epoch 0 (its items in the loader's order), or rank `rank`'s
/// share of it.
pub fn batch(recipe: &Recipe, source: &ImageViews, rank: usize, ranks: usize) -> ViewBatch {
    let cfg = loader_config(recipe);
    let order = source.epoch_order(&cfg, 0);
    let global = &order[..cfg.batch_size];
    let share = &global[dist::share(global.len(), rank, ranks)];
    source.make_batch(&cfg, 0, share).unwrap()
}
