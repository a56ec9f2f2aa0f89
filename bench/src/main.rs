//! contra's side of the benchmarks in BENCHMARKS.md (run by bench/run.sh beside
//! bench/pytorch_bench.py). Prints one JSON object per measurement.
//!
//!     contra-bench train small_cnn 256 [steps]    SimCLR step, 256 pairs of 28x28x1
//!     contra-bench train resnet18 64 [steps]      SimCLR step, 64 pairs of 32x32x3
//!     contra-bench augment [images]               SimCLR views, 32x32x3, one thread
//!     contra-bench loss nt_xent|supcon|dcl [n] [d]  loss forward + backward, n pairs
//!     contra-bench search [n] [d] [queries] [k]    exact top-k cosine search
//!     contra-bench ts2vec [batch] [length] [channels] [steps]  TS2Vec training step
//!     contra-bench text-embed [texts] [batch]      all-MiniLM-L6-v2 embedding WordNet glosses
//!     contra-bench text-train [batch] [steps] [mini_batch]  MNRL step on WordNet pairs
//!                                                  (GradCache when mini_batch > 0)
//!
//!     contra-bench conv resnet18|small_cnn [batch] [reps]  each stage's 3x3 convolution
//!                                                  (stride 1, padding 1): forward, and forward
//!                                                  with both gradients, fastest of reps (ms)
//!     contra-bench eigen [dim] [reps]                  eigenvalues of a dim x dim Gram matrix
//!     contra-bench clip-train [batch] [steps] [frozen|scratch]  CLIP step: small CNN on
//!                                                  3x32x32 and a text tower (cached
//!                                                  384-d outputs, or 2x128 BERT on
//!                                                  WordNet names), projections to 128
//!
//! The text benches read all-MiniLM-L6-v2 from $CONTRA_DATA/models and the first noun
//! synsets of /usr/share/wordnet/data.noun in file order (as bench/text_bench.py does).
//!
//! `CONTRA_BENCH_DEVICE` picks the device of `train` and `loss` (contra's `--device` syntax,
//! default `cpu`); build with `--features tch` or `cuda` for the GPU ones.

use burn::optim::GradientsParams;
use burn::prelude::*;
use contra::augment::Pipeline;
use contra::augment::loader::make_view;
use contra::data::ImageDataset;
use contra::encoders::EncoderSpec;
use contra::heads::ProjectionHeadSpec;
use contra::methods::{Method, SimClr, Views};
use contra::optim::{Optimizer, OptimizerSpec};
use contra::rng::{Rng, RowKeys};
use contra::tensor_util::tensor4;
use std::time::Instant;

/// The device named by `CONTRA_BENCH_DEVICE` (default `cpu`), and its label for the JSON lines.
fn bench_device() -> (Device, String) {
    let name = std::env::var("CONTRA_BENCH_DEVICE").unwrap_or_else(|_| "cpu".into());
    let device = contra::device::parse(&name).unwrap_or_else(|e| {
        eprintln!("CONTRA_BENCH_DEVICE: {e}");
        std::process::exit(2)
    });
    let label = if name == "cpu" {
        "contra-flex".to_string()
    } else {
        format!("contra-{name}")
    };
    (device.autodiff(), label)
}

fn train(kind: &str, pairs: usize, steps: usize) {
    let (c, hw, encoder) = match kind {
        "small_cnn" => (1, 28, EncoderSpec::SmallCnn(Default::default())),
        "resnet18" => (3, 32, EncoderSpec::Resnet18 {}),
        other => panic!("unknown model {other}"),
    };
    let (device, label) = bench_device();
    let mut model = contra::seeding::seeded(&device, 0, || {
        let e = encoder.init(c, &device).unwrap();
        let h = ProjectionHeadSpec {
            hidden_dim: 512,
            output_dim: 128,
            batch_norm: true,
        }
        .init(e.output_dim(), &device);
        SimClr::new(e, h, 0.5)
    });
    let mut opt = Optimizer::new(OptimizerSpec::sgd(0.06, 0.9, 5e-4)).unwrap();
    let mut rng = Rng::new(1);
    let n = pairs * c * hw * hw;
    let views: Vec<Vec<f32>> = (0..2)
        .map(|_| (0..n).map(|_| rng.normal() as f32).collect())
        .collect();
    let warmup = 2;
    let mut start = Instant::now();
    for step in 0..warmup + steps {
        if step == warmup {
            start = Instant::now();
        }
        let x: Vec<Tensor<4>> = views
            .iter()
            .map(|v| tensor4(v.clone(), [pairs, c, hw, hw], &device))
            .collect();
        let loss = model.loss(&Views::new(x, None));
        let _: f32 = loss.clone().into_scalar();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = opt.step(0.06, model, grads);
    }
    let secs = start.elapsed().as_secs_f64();
    let ips = (2 * pairs * steps) as f64 / secs;
    println!(
        "{}",
        serde_json::json!({"bench": "train", "impl": label, "model": kind, "pairs": pairs, "steps": steps, "images_per_second": ips})
    );
}

/// Fastest of `reps` runs of each 3x3 convolution (stride 1, padding 1) of a model's stages:
/// ResNet-18's (64 channels at 32x32 to 512 at 4x4) or the small CNN's after its first
/// (32 -> 64 at 14x14 to 128 -> 256 at 3x3). Forward alone, and forward with the input and
/// weight gradients.
fn conv(model: &str, batch: usize, reps: usize) {
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::Conv2dConfig;
    let shapes: &[(usize, usize, usize)] = match model {
        "resnet18" => &[(64, 64, 32), (128, 128, 16), (256, 256, 8), (512, 512, 4)],
        "small_cnn" => &[(32, 64, 14), (64, 128, 7), (128, 256, 3)],
        other => panic!("unknown model {other}"),
    };
    let (device, label) = bench_device();
    let mut rng = Rng::new(3);
    for &(c_in, c_out, size) in shapes {
        let conv = contra::seeding::seeded(&device, 0, || {
            Conv2dConfig::new([c_in, c_out], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(false)
                .init(&device)
        });
        let values: Vec<f32> = (0..batch * c_in * size * size)
            .map(|_| rng.normal() as f32)
            .collect();
        let shape = [batch, c_in, size, size];
        let fastest = |backward: bool| {
            (0..reps)
                .map(|_| {
                    let x = tensor4(values.clone(), shape, &device).require_grad();
                    let started = Instant::now();
                    let y = conv.forward(x.clone());
                    if backward {
                        let grads = y.sum().backward();
                        let _ = x.grad(&grads).unwrap().into_data();
                    } else {
                        let _ = y.into_data();
                    }
                    started.elapsed().as_secs_f64() * 1e3
                })
                .fold(f64::INFINITY, f64::min)
        };
        println!(
            "{}",
            serde_json::json!({"bench": "conv", "impl": label, "c_in": c_in, "c_out": c_out, "size": size, "batch": batch, "forward_ms": fastest(false), "forward_backward_ms": fastest(true)})
        );
    }
}

fn augment(images: usize) {
    let mut rng = Rng::new(2);
    // Smooth synthetic 32x32 colour images (random noise would make every crop alike).
    let n = 512;
    let mut pixels = Vec::with_capacity(n * 3 * 32 * 32);
    for _ in 0..n {
        let (a, b, p) = (
            rng.uniform(),
            rng.uniform(),
            rng.uniform() * std::f64::consts::TAU,
        );
        for c in 0..3 {
            for y in 0..32 {
                for x in 0..32 {
                    let v = 0.5 + 0.5 * ((x as f64 * a + y as f64 * b) * 0.3 + p + c as f64).sin();
                    pixels.push((v * 255.0) as u8);
                }
            }
        }
    }
    let data = ImageDataset::new(pixels, 3, 32, 32, None).unwrap();
    let pipeline = Pipeline::simclr(32, vec![0.49, 0.48, 0.45], vec![0.25, 0.24, 0.26]);
    let start = Instant::now();
    let mut checksum = 0f32;
    for i in 0..images {
        let v = make_view(&data, &pipeline, 0, 0, i % n, i / n).expect("in memory");
        checksum += v.data[0];
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"bench": "augment", "impl": "contra", "threads": 1, "images": images, "images_per_second": images as f64 / secs, "checksum": checksum})
    );
}

/// Peak resident memory of this process so far, in MiB (Linux).
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Forward and backward of one loss at `n` pairs of `d`-dimensional embeddings.
fn loss(kind: &str, n: usize, d: usize, reps: usize) {
    use contra::losses::{DclLoss, NtXentLoss, SupConLoss};
    let (device, label) = bench_device();
    let mut rng = Rng::new(3);
    let a: Vec<f32> = (0..n * d).map(|_| rng.normal() as f32).collect();
    let b: Vec<f32> = a.iter().map(|v| v + 0.3 * rng.normal() as f32).collect();
    let labels: Vec<u32> = (0..n as u32).map(|i| i % 100).collect();
    let mut times = Vec::new();
    for _ in 0..reps + 1 {
        let za = contra::tensor_util::tensor2(a.clone(), [n, d], &device).require_grad();
        let zb = contra::tensor_util::tensor2(b.clone(), [n, d], &device).require_grad();
        let start = Instant::now();
        let loss = match kind {
            "nt_xent" => NtXentLoss::new(0.1).forward(za.clone(), zb.clone()),
            "supcon" => SupConLoss::new(0.1).forward(&[za.clone(), zb.clone()], Some(&labels)),
            "dcl" => DclLoss::dcl(0.1).forward(za.clone(), zb.clone()),
            other => panic!("unknown loss {other}"),
        };
        let grads = loss.backward();
        let _: Vec<f32> = contra::tensor_util::to_vec(za.grad(&grads).unwrap());
        times.push(start.elapsed().as_secs_f64());
    }
    times.remove(0);
    let ms = 1000.0 * times.iter().sum::<f64>() / times.len() as f64;
    println!(
        "{}",
        serde_json::json!({"bench": "loss", "impl": label, "loss": kind, "n": n, "d": d, "ms": ms, "peak_rss_mib": peak_rss_mib()})
    );
}

/// Exact top-k cosine search of `queries` random rows in an index of `n` random rows.
fn search(n: usize, d: usize, queries: usize, k: usize) {
    use contra::eval::Features;
    let (device, label) = bench_device();
    let mut rng = Rng::new(4);
    let mut rows = |r: usize| Features {
        data: (0..r * d).map(|_| rng.normal() as f32).collect(),
        rows: r,
        dim: d,
    };
    let index = rows(n);
    let q = rows(queries);
    let start = Instant::now();
    let hits = contra::search::top_k(&q, &index, k, |_, _| false, &device);
    let secs = start.elapsed().as_secs_f64();
    let checksum: usize = hits.iter().map(|h| h[0].row).sum();
    println!(
        "{}",
        serde_json::json!({"bench": "search", "impl": label, "n": n, "d": d, "queries": queries, "k": k, "seconds": secs, "ms_per_query": 1000.0 * secs / queries as f64, "checksum": checksum, "peak_rss_mib": peak_rss_mib()})
    );
}

/// TS2Vec pretraining steps: `batch` random series of `length` steps and `channels`
/// channels, two views (the whole series, each with its own random timestep mask),
/// the default encoder (hidden 64, output 320, 10 blocks), the hierarchical loss, AdamW.
fn ts2vec(batch: usize, length: usize, channels: usize, steps: usize) {
    use contra::encoders::ts2vec::Ts2VecConfig;
    use contra::losses::HierarchicalLoss;
    let (device, label) = bench_device();
    let ad = device.autodiff();
    let mut encoder = Ts2VecConfig::default().init(channels, &ad);
    let mut opt = Optimizer::new(OptimizerSpec::adamw(1e-3, 0.0)).unwrap();
    let mut rng = Rng::new(5);
    let mut times = Vec::new();
    let items: Vec<usize> = (0..batch).collect();
    for step in 0..steps + 1 {
        // The masks the training loop draws: dropout keyed by (step, item, view).
        let keys = |view| RowKeys::view(5, step as u64, &items, view);
        let x: Vec<f32> = (0..batch * length * channels)
            .map(|_| rng.normal() as f32)
            .collect();
        let mut mask = || {
            let keep: Vec<f32> = (0..batch * length)
                .map(|_| if rng.bernoulli(0.5) { 1.0 } else { 0.0 })
                .collect();
            Tensor::<3>::from_data(TensorData::new(keep, [batch, length, 1]), &ad)
        };
        let (m1, m2) = (mask(), mask());
        let start = Instant::now();
        let xt = Tensor::<3>::from_data(TensorData::new(x, [batch, length, channels]), &ad);
        let z1 = encoder.forward(xt.clone(), m1, Some(&keys(0)));
        let z2 = encoder.forward(xt, m2, Some(&keys(1)));
        let loss = HierarchicalLoss::default().forward(z1, z2);
        let grads = GradientsParams::from_grads(loss.backward(), &encoder);
        encoder = opt.step(1e-3, encoder, grads);
        let _ = encoder.blocks[0].conv1.weight.val().into_data();
        times.push(start.elapsed().as_secs_f64());
    }
    times.remove(0);
    let secs: f64 = times.iter().sum();
    println!(
        "{}",
        serde_json::json!({"bench": "ts2vec", "impl": label, "batch": batch, "length": length, "channels": channels, "steps": steps, "windows_per_second": (batch * steps) as f64 / secs})
    );
}

/// The first `n` noun synsets of WordNet in file order: (gloss, names).
fn wordnet_pairs(n: usize) -> Vec<(String, String)> {
    let all =
        contra::data::wordnet::read_nouns(std::path::Path::new("/usr/share/wordnet/data.noun"))
            .unwrap_or_else(|e| panic!("{e}"));
    all.into_iter()
        .take(n)
        .map(|s| (s.gloss, s.names.join(", ")))
        .collect()
}

fn minilm() -> contra::encoders::sentence::PreparedBert {
    let spec = contra::encoders::sentence::BertSpec {
        path: "all-MiniLM-L6-v2".into(),
        ..Default::default()
    };
    spec.prepare().unwrap_or_else(|e| panic!("{e}"))
}

fn text_embed(n: usize, batch: usize) {
    let (device, label) = bench_device();
    let device = device.inner();
    let prepared = minilm();
    let encoder = prepared.encoder(&device).unwrap();
    let texts: Vec<String> = wordnet_pairs(n).into_iter().map(|(g, _)| g).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let embed = |t: &[&str]| {
        contra::encoders::sentence::encode_sentences(
            &encoder,
            &prepared.tokenizer,
            t,
            batch,
            &device,
        )
        .unwrap()
    };
    embed(&refs[..batch.min(n)]);
    let start = Instant::now();
    embed(&refs);
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"bench": "text_embed", "impl": label, "texts": n, "batch": batch, "seconds": secs, "texts_per_second": n as f64 / secs})
    );
}

fn text_train(batch: usize, steps: usize, mini_batch: usize) {
    use contra::encoders::bert::Tokens;
    use contra::methods::mnrl::MnrlConfig;
    let (device, label) = bench_device();
    let prepared = minilm();
    let mut model = MnrlConfig {
        mini_batch,
        ..Default::default()
    }
    .init(prepared.encoder(&device).unwrap());
    let mut opt = Optimizer::new(OptimizerSpec::adamw(2e-5, 0.0)).unwrap();
    let pairs = wordnet_pairs(batch * (steps + 1));
    let warmup = 1;
    let mut start = Instant::now();
    for step in 0..warmup + steps {
        if step == warmup {
            start = Instant::now();
        }
        let part = &pairs[step * batch..(step + 1) * batch];
        let column =
            |f: fn(&(String, String)) -> &str| -> Vec<&str> { part.iter().map(f).collect() };
        let tok = |t: Vec<&str>| Tokens::new(&prepared.tokenizer.encode(&t).unwrap(), &device);
        let views = vec![tok(column(|p| &p.0)), tok(column(|p| &p.1))];
        let items: Vec<usize> = (step * batch..(step + 1) * batch).collect();
        let mut v = Views::new(views, None);
        v.keys = (0..2).map(|k| RowKeys::view(0, 0, &items, k)).collect();
        let (_, grads) = model.gradients(&v);
        model = opt.step(2e-5, model, grads);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"bench": "text_train", "impl": label, "batch": batch, "mini_batch": mini_batch, "steps": steps, "steps_per_second": steps as f64 / secs, "peak_rss_mib": peak_rss_mib()})
    );
}

/// One CLIP training step (pairs/s): the emoji recipe's towers on random images, with the
/// text tower frozen (its outputs cached: random 384-d rows) or a 2-layer, 128-wide BERT
/// from scratch on WordNet synset names with MiniLM's tokenizer.
fn clip_train(batch: usize, steps: usize, text: &str) {
    use contra::augment::captions::{CaptionBatch, Side};
    use contra::augment::loader::ViewBatch;
    use contra::methods::Trainable;
    use contra::methods::clip::{Clip, ClipConfig};
    let (device, label) = bench_device();
    let scratch = match text {
        "frozen" => false,
        "scratch" => true,
        other => panic!("unknown text tower {other}: frozen or scratch"),
    };
    let spec = contra::encoders::sentence::BertSpec {
        path: "all-MiniLM-L6-v2".into(),
        pretrained: !scratch,
        layers: scratch.then_some(2),
        hidden_size: scratch.then_some(128),
        heads: scratch.then_some(2),
        ..Default::default()
    };
    let prepared = spec.prepare().unwrap_or_else(|e| panic!("{e}"));
    let config = ClipConfig {
        freeze_text: !scratch,
        ..Default::default()
    };
    let mut model = contra::seeding::seeded(&device, 0, || {
        let image = EncoderSpec::SmallCnn(Default::default())
            .init(3, &device)
            .unwrap();
        Clip::new(&config, image, prepared.encoder(&device).unwrap(), &device)
    });
    let mut opt = Optimizer::new(OptimizerSpec::adamw(1e-3, 0.1)).unwrap();
    let mut rng = Rng::new(1);
    let pixels: Vec<f32> = (0..batch * 3 * 32 * 32)
        .map(|_| rng.normal() as f32)
        .collect();
    let names: Vec<String> = wordnet_pairs(batch * (steps + 2))
        .into_iter()
        .map(|p| p.1)
        .collect();
    let cached: Vec<f32> = (0..batch * 384).map(|_| rng.normal() as f32).collect();
    let warmup = 2;
    let mut start = Instant::now();
    for step in 0..warmup + steps {
        if step == warmup {
            start = Instant::now();
        }
        let indices: Vec<usize> = (step * batch..(step + 1) * batch).collect();
        let texts = if scratch {
            let part: Vec<&str> = names[step * batch..(step + 1) * batch]
                .iter()
                .map(String::as_str)
                .collect();
            Side::Inputs(prepared.tokenizer.encode(&part).unwrap())
        } else {
            Side::Cached {
                data: cached.clone(),
                dim: 384,
            }
        };
        let b = CaptionBatch {
            images: Side::Inputs(ViewBatch {
                views: vec![pixels.clone()],
                indices: indices.clone(),
                seed: 0,
                epoch: 0,
                labels: None,
                channels: 3,
                height: 32,
                width: 32,
            }),
            texts,
            indices,
            seed: 0,
            epoch: 0,
        };
        let (_, grads) = model.batch_gradients(b, &device);
        model = opt.step(1e-3, model, grads);
        model = model.after_optimizer_step(step as u64, steps as u64);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"bench": "clip_train", "impl": label, "text": text, "batch": batch, "steps": steps, "pairs_per_second": (batch * steps) as f64 / secs})
    );
}

/// The eigenvalues of the `d x d` Gram matrix of 4,096 random `d`-dimensional rows, as the
/// effective-rank diagnostic computes them (milliseconds, best of `reps`).
fn eigen(d: usize, reps: usize) {
    let mut rng = Rng::new(3);
    let (n, mut gram) = (4096, vec![0f64; d * d]);
    let rows: Vec<f64> = (0..n * d).map(|_| rng.normal()).collect();
    for r in rows.chunks(d) {
        for p in 0..d {
            for q in 0..d {
                gram[p * d + q] += r[p] * r[q];
            }
        }
    }
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let start = Instant::now();
        let e = contra::eval::space::symmetric_eigenvalues(gram.clone(), d);
        best = best.min(start.elapsed().as_secs_f64() * 1e3);
        assert_eq!(e.len(), d);
    }
    println!(
        "{}",
        serde_json::json!({"bench": "eigenvalues", "dim": d, "reps": reps, "best_ms": best})
    );
}

/// A folder of `n` generated `size x size` RGB JPEGs in 10 class folders (`class0/`, ...):
/// each a seeded colour gradient with a class-shaped blob (disc, square, bar, ...) of a
/// class-tinted colour at a random place and scale, so that the classes are learnable.
fn jpeg_folder(dir: &std::path::Path, n: usize, size: u32) {
    use rayon::prelude::*;
    let started = Instant::now();
    for c in 0..10 {
        std::fs::create_dir_all(dir.join(format!("class{c}"))).expect("creating the folder");
    }
    let bytes: u64 = (0..n)
        .into_par_iter()
        .map(|i| {
            let class = i % 10;
            let mut rng = contra::rng::Rng::derive(16, &[i as u64]);
            let mut r = |lo: f64, hi: f64| rng.range(lo, hi) as f32;
            let (g0, g1) = (
                [r(0.0, 1.0), r(0.0, 1.0), r(0.0, 1.0)],
                [r(0.0, 1.0), r(0.0, 1.0), r(0.0, 1.0)],
            );
            let hue = class as f32 / 10.0;
            let tint = [
                0.5 + 0.5 * (std::f32::consts::TAU * hue).cos(),
                0.5 + 0.5 * (std::f32::consts::TAU * (hue + 0.33)).cos(),
                0.5 + 0.5 * (std::f32::consts::TAU * (hue + 0.67)).cos(),
            ];
            let (cx, cy, radius) = (r(0.25, 0.75), r(0.25, 0.75), r(0.12, 0.3));
            let s = size as f32;
            let img = image::RgbImage::from_fn(size, size, |x, y| {
                let (u, v) = (x as f32 / s, y as f32 / s);
                let (dx, dy) = (u - cx, v - cy);
                let inside = match class {
                    0 => dx * dx + dy * dy < radius * radius,
                    1 => dx.abs().max(dy.abs()) < radius,
                    2 => dx.abs() < radius * 0.3 && dy.abs() < radius,
                    3 => dy.abs() < radius * 0.3 && dx.abs() < radius,
                    4 => dx.abs() + dy.abs() < radius,
                    5 => ((dx * dx + dy * dy).sqrt() - radius).abs() < radius * 0.25,
                    6 => dy > -radius && dy < radius && dx.abs() < (dy + radius) * 0.5,
                    7 => {
                        (dx.abs() < radius * 0.25 || dy.abs() < radius * 0.25)
                            && dx.abs().max(dy.abs()) < radius
                    }
                    8 => ((u * 40.0).sin() > 0.0) && dx.abs().max(dy.abs()) < radius,
                    _ => dx * dx / 4.0 + dy * dy < radius * radius * 0.25,
                };
                image::Rgb([0, 1, 2].map(|k| {
                    let base = g0[k] * (1.0 - u) + g1[k] * u;
                    let v = if inside { tint[k] } else { base * 0.6 };
                    (v.clamp(0.0, 1.0) * 255.0) as u8
                }))
            });
            let path = dir.join(format!("class{class}/{i:06}.jpg"));
            let mut out = std::io::BufWriter::new(std::fs::File::create(&path).expect("writing"));
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
                .encode_image(&img)
                .expect("encoding a JPEG");
            drop(out);
            std::fs::metadata(&path).map_or(0, |m| m.len())
        })
        .sum();
    println!(
        "{}",
        serde_json::json!({"bench": "jpeg-folder", "images": n, "size": size, "megabytes": bytes as f64 / 1e6, "seconds": started.elapsed().as_secs_f64()})
    );
}

/// AUROC of each detector a CSI model offers (kNN on the upright images, kNN averaged over
/// the shifts, the paper's score) on the test split of each model's recipe, from one pass of
/// the model over the normal training images and the test images.
fn csi_scores(models: &[String]) {
    use contra::eval::anomaly::{DetectionMetrics, knn_scores};
    use contra::eval::shifted::{csi_scores, encode_shifted, shifted_knn_scores};
    use contra::methods::Model;
    use contra::workflow::Loaded;
    use contra::workflow::modality::Images;
    let device = contra::device::parse("cpu").unwrap();
    for path in models {
        let file = contra::train::TrainedFile::read(std::path::Path::new(path)).unwrap();
        let l = Loaded::<Images>::read(&file, &device, None).unwrap();
        let Model::Csi(csi) = &l.model else {
            panic!("{path} is not a CSI model")
        };
        let normal_classes = l.recipe.data.default_normal_classes().unwrap();
        let (normal_items, anomalous) =
            contra::workflow::evaluate::normal_split(&l, &normal_classes).unwrap();
        let anomalous = anomalous.expect("labelled test images");
        let started = std::time::Instant::now();
        let encode = |data| {
            encode_shifted(
                csi,
                data,
                l.prep.normalize.as_ref(),
                l.prep.size,
                512,
                &device,
            )
        };
        let (normal, test) = (encode(&normal_items), encode(&l.splits.test));
        let auroc = |s: &[f64]| DetectionMetrics::of(s, &anomalous, 0).unwrap().auroc;
        let knn = auroc(&knn_scores(
            &normal.features[0],
            &test.features[0],
            5,
            false,
            &device,
        ));
        let knn_shifts = auroc(&shifted_knn_scores(&normal, &test, 5, &device));
        let paper = auroc(&csi_scores(&normal, &test, &device).unwrap());
        println!(
            "{}",
            serde_json::json!({"bench": "csi-scores", "model": path, "normal": normal_classes, "knn": knn, "knn_shifts": knn_shifts, "csi": paper, "seconds": started.elapsed().as_secs_f64()})
        );
    }
}

fn main() {
    contra::runtime::keep_freed_memory();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("train") => {
            let kind = args.get(1).map_or("small_cnn", String::as_str);
            let pairs = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(256);
            let steps = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(10);
            train(kind, pairs, steps);
        }
        Some("loss") => loss(
            args.get(1).map_or("nt_xent", String::as_str),
            args.get(2).and_then(|s| s.parse().ok()).unwrap_or(4096),
            args.get(3).and_then(|s| s.parse().ok()).unwrap_or(128),
            3,
        ),
        Some("augment") => augment(args.get(1).and_then(|s| s.parse().ok()).unwrap_or(20_000)),
        Some("ts2vec") => {
            let num = |i: usize, default: usize| {
                args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default)
            };
            ts2vec(num(1, 8), num(2, 150), num(3, 1), num(4, 10))
        }
        Some("search") => {
            let num = |i: usize, default: usize| {
                args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default)
            };
            search(num(1, 1_000_000), num(2, 128), num(3, 1000), num(4, 10))
        }
        Some("text-embed") => {
            let num = |i: usize, default: usize| {
                args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default)
            };
            text_embed(num(1, 2048), num(2, 64))
        }
        Some("text-train") => {
            let num = |i: usize, default: usize| {
                args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default)
            };
            text_train(num(1, 64), num(2, 3), num(3, 0))
        }
        Some("conv") => {
            let num = |i: usize, default: usize| {
                args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default)
            };
            conv(
                args.get(1).map_or("resnet18", String::as_str),
                num(2, 128),
                num(3, 5),
            )
        }
        Some("eigen") => {
            let num = |i: usize, default: usize| {
                args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default)
            };
            eigen(num(1, 512), num(2, 3))
        }
        Some("clip-train") => {
            let num = |i: usize, default: usize| {
                args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default)
            };
            clip_train(
                num(1, 128),
                num(2, 10),
                args.get(3).map_or("frozen", String::as_str),
            )
        }
        Some("jpeg-folder") => {
            let dir = std::path::PathBuf::from(args.get(1).map_or("jpeg-folder", String::as_str));
            let num = |i: usize, default: usize| {
                args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default)
            };
            jpeg_folder(&dir, num(2, 50_000), num(3, 256) as u32)
        }
        Some("csi-scores") => csi_scores(&args[1..]),
        _ => {
            eprintln!(
                "usage: contra-bench csi-scores MODEL... | jpeg-folder [DIR N SIZE] | clip-train [BATCH STEPS frozen|scratch] | text-embed [TEXTS BATCH] | text-train [BATCH STEPS MINI_BATCH] | train small_cnn|resnet18 PAIRS [STEPS] | conv resnet18|small_cnn [BATCH REPS] | augment [IMAGES] | loss KIND [N D] | search [N D QUERIES K] | ts2vec [B T C STEPS]"
            );
            std::process::exit(2);
        }
    }
}
