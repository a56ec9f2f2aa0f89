//! Training across MPI processes computes what one process computes: the same checks as
//! `tests/data_parallel.rs`, on real ranks under `mpirun -n 2` and `-n 3` (uneven shares).
//!
//! The test re-runs this test binary under `mpirun`, filtered to `rank_checks`, which does
//! the work on each rank (it does nothing when not started by the launcher).
#![cfg(feature = "mpi")]

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use contra::augment::loader::{BatchSource, ImageViews, ViewBatch};
use contra::data::digits;
use contra::dist;
use contra::encoders::{EncoderSpec, SmallCnnConfig};
use contra::methods::{MethodSpec, MoCoConfig, Model, SimClrConfig, SupConConfig, Trainable};
use contra::recipe::Recipe;
use contra::train::data_parallel::all_reduce_gradients;
use contra::train::{Monitors, TrainOptions, build_model, loader_config, train_loop};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

const CHILD: &str = "CONTRA_MPI_TEST_DIR";

/// Small networks, with BatchNorm (synchronised across ranks) or without.
fn recipe(method: MethodSpec, batch_size: usize, batch_norm: bool) -> Recipe {
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
    r.train.epochs = 1;
    r
}

const NAMES: [&str; 6] = [
    "simclr",
    "supcon",
    "moco",
    "simclr-batch-norm",
    "supcon-batch-norm",
    "moco-batch-norm",
];

/// Each method without and with BatchNorm, named as in [`NAMES`].
fn cases() -> Vec<(&'static str, Recipe)> {
    let methods = [
        MethodSpec::Simclr(SimClrConfig::default()),
        MethodSpec::Supcon(SupConConfig { temperature: 0.3 }),
        MethodSpec::Moco(MoCoConfig {
            queue_size: 24,
            ..Default::default()
        }),
    ];
    let plain = methods.iter().map(|m| recipe(m.clone(), 10, false));
    let normed = methods.iter().map(|m| recipe(m.clone(), 10, true));
    NAMES.into_iter().zip(plain.chain(normed)).collect()
}

fn source(recipe: &Recipe, items: usize) -> Arc<ImageViews> {
    let train = digits::splits().train.take(items);
    let pipeline = recipe.pipeline(&train).unwrap();
    Arc::new(ImageViews {
        data: train,
        pipeline,
    })
}

fn flat_gradients(model: &Model, grads: &GradientsParams) -> Vec<f32> {
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

fn flat_weights(model: &Model) -> Vec<f32> {
    contra::checkpoint::module_tensors(model)
        .into_values()
        .flat_map(|t| t.data)
        .collect()
}

fn relative_difference(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f64, |m, &x| m.max(x.abs() as f64));
    let diff = a
        .iter()
        .zip(b)
        .fold(0f64, |m, (&x, &y)| m.max((x as f64 - y as f64).abs()));
    diff / scale.max(1e-30)
}

fn batch(recipe: &Recipe, source: &ImageViews, rank: usize, ranks: usize) -> ViewBatch {
    let cfg = loader_config(recipe);
    let order = source.epoch_order(&cfg, 0);
    let global = &order[..cfg.batch_size];
    source
        .make_batch(&cfg, 0, &global[dist::share(global.len(), rank, ranks)])
        .unwrap()
}

/// On every rank: gradients and weights after three steps against one process (computed
/// on this rank before joining the group).
fn check_rank(dir: &Path) {
    let ad = contra::device::parse("cpu").unwrap().autodiff();
    let opts = TrainOptions {
        resume: false,
        quiet: true,
    };
    let rank: usize = std::env::var("OMPI_COMM_WORLD_RANK")
        .unwrap()
        .parse()
        .unwrap();
    let cases: Vec<_> = cases()
        .into_iter()
        .map(|(name, mut recipe)| {
            let source = source(&recipe, 30);
            let model = build_model(&recipe, 1, &ad).unwrap();
            let (loss, grads) = model.batch_gradients(batch(&recipe, &source, 0, 1), &ad);
            let single_gradient = (loss, flat_gradients(&model, &grads));
            recipe.train.out = Some(dir.join(format!("{name}-single-{rank}")));
            let model = build_model(&recipe, 1, &ad).unwrap();
            let single =
                train_loop(&recipe, source.clone(), model, &ad, &opts, Monitors::none()).unwrap();
            assert_eq!(single.steps, 3);
            recipe.train.out = Some(dir.join(name));
            (name, recipe, source, single_gradient, single)
        })
        .collect();
    let group = dist::mpi::MpiGroup::init(Duration::from_secs(60)).unwrap();
    dist::within(Box::new(group), || {
        let (rank, ranks) = dist::rank_and_size();
        for (name, recipe, source, (loss, single_gradient), single) in &cases {
            let model = build_model(recipe, 1, &ad).unwrap();
            let (l, grads) = model.batch_gradients(batch(recipe, source, rank, ranks), &ad);
            let grads = all_reduce_gradients(&model, grads, dist::group().unwrap().as_ref());
            let rel = relative_difference(&flat_gradients(&model, &grads), single_gradient);
            assert!(
                ((l - loss) / loss).abs() < 1e-5,
                "{name}: loss {l} against {loss}"
            );
            assert!(
                rel < 1e-5,
                "{name}, rank {rank} of {ranks}: gradient differs by {rel:.2e}"
            );
            let model = build_model(recipe, 1, &ad).unwrap();
            let report =
                train_loop(recipe, source.clone(), model, &ad, &opts, Monitors::none()).unwrap();
            let rel =
                relative_difference(&flat_weights(&report.model), &flat_weights(&single.model));
            assert!(
                rel < 1e-5,
                "{name}, rank {rank} of {ranks}: weights differ by {rel:.2e}"
            );
            println!("rank {rank} of {ranks}: {name} gradient and weights match");
        }
    });
}

#[test]
fn rank_checks() {
    if let Ok(dir) = std::env::var(CHILD) {
        check_rank(Path::new(&dir));
    }
}

/// `mpirun` with what it needs here: as root, and more ranks than cores.
pub fn mpirun(ranks: usize) -> Command {
    let mut c = Command::new("mpirun");
    c.args(["-n", &ranks.to_string(), "--oversubscribe"])
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("RAYON_NUM_THREADS", "1");
    c
}

#[test]
fn two_and_three_mpi_ranks_train_as_one_process() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let me = std::env::current_exe().unwrap();
    for ranks in [2, 3] {
        let dir: PathBuf =
            std::env::temp_dir().join(format!("contra-mpi-{}-{ranks}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = mpirun(ranks)
            .arg(&me)
            .args(["--exact", "rank_checks", "--nocapture", "--test-threads=1"])
            .env(CHILD, &dir)
            .output()
            .expect("running mpirun (OpenMPI: apt install openmpi-bin libopenmpi-dev)");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "mpirun -n {ranks}:\n{text}");
        for name in NAMES {
            for rank in 0..ranks {
                let line = format!("rank {rank} of {ranks}: {name} gradient and weights match");
                assert!(text.contains(&line), "missing `{line}` in:\n{text}");
            }
            // Rank 0 alone wrote the run's files.
            assert!(dir.join(name).join("model.safetensors").is_file());
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
