//! Training across processes computes what one process computes: ranks that are threads of
//! this process (the same arithmetic as MPI ranks; `tests/mpi.rs` runs real ones), each with
//! its share of the global batch, against one process on the whole batch.

#[path = "support/parallel.rs"]
mod parallel;

use contra::augment::loader::ImageViews;
use contra::dist::{self, Collective};
use contra::methods::{MethodSpec, MoCoConfig, SimClrConfig, SupConConfig, Trainable};
use contra::recipe::Recipe;
use contra::train::data_parallel::all_reduce_gradients;
use contra::train::{Monitors, TrainOptions, build_model, train_loop};
use parallel::*;

fn methods() -> Vec<(&'static str, MethodSpec)> {
    vec![
        ("simclr", MethodSpec::Simclr(SimClrConfig::default())),
        (
            "supcon",
            MethodSpec::Supcon(SupConConfig { temperature: 0.3 }),
        ),
        (
            "moco",
            MethodSpec::Moco(MoCoConfig {
                queue_size: 24,
                ..Default::default()
            }),
        ),
        ("byol", MethodSpec::Byol(Default::default())),
    ]
}

/// Run `f` on every rank of a group of `ranks` threads; the results in rank order.
fn on_ranks<T: Send>(ranks: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = dist::local_group(ranks)
            .into_iter()
            .enumerate()
            .map(|(rank, group)| {
                s.spawn(move || dist::within(group as Box<dyn Collective>, || f(rank)))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// A loss value and the flattened gradient.
type LossAndGradient = (f32, Vec<f32>);

/// One process's loss and gradient on the global batch, and every rank's after the
/// all-reduce; with `gather` false each rank works alone on its share (local negatives).
fn gradients(
    recipe: &Recipe,
    source: &ImageViews,
    ranks: usize,
    gather: bool,
) -> (LossAndGradient, Vec<LossAndGradient>) {
    let ad = autodiff();
    let model = build_model(recipe, 1, &ad).unwrap();
    let (loss, grads) = model.batch_gradients(batch(recipe, source, 0, 1), &ad);
    let single = (loss, flat_gradients(&model, &grads));
    let per_rank = on_ranks(ranks, |rank| {
        dist::set_sync_batch_norm(recipe.train.sync_batch_norm);
        let model = build_model(recipe, 1, &ad).unwrap();
        let share = batch(recipe, source, rank, ranks);
        let (loss, grads) = if gather {
            model.batch_gradients(share, &ad)
        } else {
            // The bug the peers report: negatives from this rank's share only.
            let group = dist::group().unwrap();
            let alone = dist::local_group(1).pop().unwrap();
            let (loss, grads) = dist::within(alone as Box<dyn Collective>, || {
                model.batch_gradients(share, &ad)
            });
            let scale = 1.0 / ranks as f32; // each rank's mean loss: average them
            let grads = all_reduce_gradients(&model, grads, group.as_ref());
            let flat: Vec<f32> = flat_gradients(&model, &grads)
                .into_iter()
                .map(|g| g * scale)
                .collect();
            return (loss, flat);
        };
        let grads = all_reduce_gradients(&model, grads, dist::group().unwrap().as_ref());
        (loss, flat_gradients(&model, &grads))
    });
    (single, per_rank)
}

#[test]
fn every_rank_has_the_single_process_gradient_at_two_and_three_ranks() {
    for (name, method) in methods() {
        // 10 items: 5 + 5 at two ranks, 4 + 3 + 3 at three.
        let recipe = recipe(method, 10);
        let source = source(&recipe, 40);
        for ranks in [2, 3] {
            let ((loss, single), per_rank) = gradients(&recipe, &source, ranks, true);
            for (rank, (l, g)) in per_rank.iter().enumerate() {
                assert!(
                    (l - loss).abs() < 1e-5 * loss.abs().max(1.0),
                    "{name} at {ranks} ranks, rank {rank}: loss {l} against {loss}"
                );
                let rel = relative_difference(g, &single);
                println!("{name} at {ranks} ranks, rank {rank}: gradient {rel:.1e}");
                assert!(
                    rel < 1e-5,
                    "{name} at {ranks} ranks, rank {rank}: gradient differs by {rel:.2e}"
                );
            }
            // The all-reduce gives every rank the same bits.
            assert!(per_rank.iter().all(|(_, g)| g == &per_rank[0].1));
        }
    }
}

#[test]
fn synchronised_batch_norm_gives_the_single_process_gradient() {
    for (name, method) in methods() {
        let mut recipe = with_batch_norm(method, 10, true);
        let source = source(&recipe, 30);
        for ranks in [2, 3] {
            let ((loss, single), per_rank) = gradients(&recipe, &source, ranks, true);
            for (rank, (l, g)) in per_rank.iter().enumerate() {
                assert!(
                    (l - loss).abs() < 1e-5 * loss.abs().max(1.0),
                    "{name}: {l} against {loss}"
                );
                let rel = relative_difference(g, &single);
                println!("{name} at {ranks} ranks, rank {rank}: gradient {rel:.1e}");
                assert!(
                    rel < 1e-5,
                    "{name} with BatchNorm at {ranks} ranks, rank {rank}: gradient differs by {rel:.2e}"
                );
            }
        }
        // Each rank's own statistics (no synchronisation) train another model.
        recipe.train.sync_batch_norm = false;
        let ((_, single), per_rank) = gradients(&recipe, &source, 2, true);
        let rel = relative_difference(&per_rank[0].1, &single);
        assert!(
            rel > 1e-3,
            "{name}: per-rank BatchNorm differs by only {rel:.2e}"
        );
    }
}

#[test]
fn local_negatives_give_another_gradient() {
    // MoCo's negatives are its queue: local keys change it from the second step on, which
    // the three-step test sees. BYOL has no negatives.
    for (name, method) in methods()
        .into_iter()
        .filter(|(n, _)| !["moco", "byol"].contains(n))
    {
        let recipe = recipe(method, 10);
        let source = source(&recipe, 40);
        let ((_, single), per_rank) = gradients(&recipe, &source, 2, false);
        let rel = relative_difference(&per_rank[0].1, &single);
        assert!(
            rel > 1e-2,
            "{name}: local negatives should change the gradient, differ by {rel:.2e}"
        );
    }
}

#[test]
fn three_steps_on_two_and_three_ranks_end_at_the_single_process_weights() {
    let cases = methods()
        .into_iter()
        .flat_map(|(name, m)| [(name, m.clone(), false), (name, m, true)]);
    for (name, method, batch_norm) in cases {
        let name = if batch_norm {
            format!("{name}-batch-norm")
        } else {
            name.to_string()
        };
        let name = name.as_str();
        // 30 items, batch 10: three steps.
        let mut recipe = with_batch_norm(method, 10, batch_norm);
        recipe.train.epochs = 1;
        let source = source(&recipe, 30);
        let ad = autodiff();
        let opts = TrainOptions {
            resume: false,
            quiet: true,
        };
        let train = |recipe: &Recipe| {
            let model = build_model(recipe, 1, &ad).unwrap();
            train_loop(recipe, source.clone(), model, &ad, &opts, Monitors::none()).unwrap()
        };
        let dir = tempdir(name);
        recipe.train.out = Some(dir.join("one"));
        let single = train(&recipe);
        assert_eq!(single.steps, 3);
        let single_weights = flat_weights(&single.model);
        for ranks in [2, 3] {
            let mut recipe = recipe.clone();
            recipe.train.out = Some(dir.join(format!("ranks{ranks}")));
            let reports = on_ranks(ranks, |_| {
                let r = train(&recipe);
                (r.final_loss, flat_weights(&r.model))
            });
            for (rank, (loss, weights)) in reports.iter().enumerate() {
                let rel = relative_difference(weights, &single_weights);
                println!("{name} at {ranks} ranks, rank {rank}: weights after 3 steps {rel:.1e}");
                assert!(
                    rel < 1e-5,
                    "{name} at {ranks} ranks, rank {rank}: weights differ by {rel:.2e}"
                );
                assert!((loss - single.final_loss).abs() < 1e-5 * single.final_loss.abs().max(1.0));
            }
            // Rank 0 alone wrote the run's files, and the checkpoint says how many ranks.
            let out = dir.join(format!("ranks{ranks}"));
            assert!(out.join("model.safetensors").is_file());
            let text = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
            assert_eq!(
                text.lines().filter(|l| l.contains("\"loss\"")).count(),
                3,
                "one metrics line per step"
            );
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}

#[test]
fn methods_that_do_not_gather_are_refused_across_processes() {
    let recipe = recipe(MethodSpec::Csi(Default::default()), 10);
    let source = source(&recipe, 20);
    let errors = on_ranks(2, |_| {
        let ad = autodiff();
        let model = build_model(&recipe, 1, &ad).unwrap();
        let opts = TrainOptions {
            resume: false,
            quiet: true,
        };
        train_loop(&recipe, source.clone(), model, &ad, &opts, Monitors::none())
            .unwrap_err()
            .to_string()
    });
    for e in errors {
        assert!(e.contains("method.kind") && e.contains("`csi`"), "{e}");
    }
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "contra-data-parallel-{name}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}
