//! Training across MPI processes computes what one process computes: the same checks as
//! `tests/data_parallel.rs`, on real ranks under `mpirun -n 2` and `-n 3` (uneven shares).
//!
//! The test re-runs this test binary under `mpirun`, filtered to `rank_checks`, which does
//! the work on each rank (it does nothing when not started by the launcher).
#![cfg(feature = "mpi")]

#[path = "support/parallel.rs"]
mod parallel;

use contra::dist;
use contra::methods::{MethodSpec, MoCoConfig, SimClrConfig, SupConConfig, Trainable};
use contra::recipe::Recipe;
use contra::train::data_parallel::all_reduce_gradients;
use contra::train::{Monitors, TrainOptions, build_model, train_loop};
use parallel::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const CHILD: &str = "CONTRA_MPI_TEST_DIR";

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
    let plain = methods
        .iter()
        .map(|m| with_batch_norm(m.clone(), 10, false));
    let normed = methods.iter().map(|m| with_batch_norm(m.clone(), 10, true));
    NAMES
        .into_iter()
        .zip(plain.chain(normed))
        .map(|(name, mut r)| {
            r.train.epochs = 1; // 30 items, batch 10: three steps
            (name, r)
        })
        .collect()
}

/// On every rank: gradients and weights after three steps against one process (computed
/// on this rank before joining the group).
fn check_rank(dir: &Path) {
    let ad = autodiff();
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
