//! contra's numerics against PyTorch: fixtures written by tools/reference/fixtures.py.

use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::TensorData;
use contra::checkpoint::{HostTensor, load_module};
use contra::losses::NtXentLoss;
use contra::optim::{Optimizer, OptimizerSpec};
use contra::tensor_util::to_vec;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

fn fixture(name: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn assert_close(name: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{name}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(g.is_finite(), "{name}[{i}] = {g}");
        let err = (g - w).abs() / w.abs().max(1.0);
        assert!(
            err <= tol,
            "{name}[{i}]: got {g}, PyTorch {w} (error {err:e})"
        );
    }
}

/// A fixture case's loss value (`case["loss"]`) equals `got` to 1e-5.
fn assert_loss(name: &str, got: f32, case: &Value) {
    let want = case["loss"].as_f64().unwrap() as f32;
    assert_close(&format!("{name} loss"), &[got], &[want], 1e-5);
}

/// The gradient of `t` equals the fixture's values.
fn assert_grad<const D: usize>(
    name: &str,
    t: &Tensor<D>,
    grads: &burn::tensor::Gradients,
    want: &Value,
) {
    assert_close(name, &to_vec(t.grad(grads).unwrap()), &floats(want), 1e-5);
}

fn device() -> Device {
    contra::device::parse("cpu").unwrap().autodiff()
}

#[test]
fn nt_xent_matches_pytorch_in_value_and_gradient() {
    let dev = device();
    let cases = fixture("nt_xent.json");
    for case in cases["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (n, d) = (
            case["n"].as_u64().unwrap() as usize,
            case["d"].as_u64().unwrap() as usize,
        );
        let t = case["temperature"].as_f64().unwrap() as f32;
        let a = Tensor::<2>::from_data(TensorData::new(floats(&case["a"]), [n, d]), &dev)
            .require_grad();
        let b = Tensor::<2>::from_data(TensorData::new(floats(&case["b"]), [n, d]), &dev)
            .require_grad();
        let loss = NtXentLoss::new(t).forward(a.clone(), b.clone());
        let grads = loss.backward();
        let value = loss.into_scalar::<f32>();
        assert_loss(name, value, case);
        assert_grad(&format!("{name} grad a"), &a, &grads, &case["grad_a"]);
        assert_grad(&format!("{name} grad b"), &b, &grads, &case["grad_b"]);
    }
}

/// At batch 4096 and temperature 0.05 the loss stays finite and equals a float64 log-sum-exp
/// computed here.
#[test]
fn nt_xent_is_stable_at_batch_4096_and_temperature_0_05() {
    let dev = contra::device::parse("cpu").unwrap();
    let (n, d, t) = (4096usize, 16usize, 0.05f64);
    let mut rng = contra::rng::Rng::new(11);
    let a: Vec<f32> = (0..n * d).map(|_| rng.normal() as f32).collect();
    // Positives correlated with anchors so the loss is far from uniform.
    let b: Vec<f32> = a.iter().map(|v| v + 0.3 * rng.normal() as f32).collect();
    let loss = NtXentLoss::new(t as f32).forward(
        Tensor::from_data(TensorData::new(a.clone(), [n, d]), &dev),
        Tensor::from_data(TensorData::new(b.clone(), [n, d]), &dev),
    );
    let got = loss.into_scalar::<f32>() as f64;
    let z: Vec<Vec<f64>> = a
        .chunks(d)
        .chain(b.chunks(d))
        .map(|r| {
            let norm = r.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
            r.iter().map(|&x| x as f64 / norm).collect()
        })
        .collect();
    let m = 2 * n;
    use rayon::prelude::*;
    let total: f64 = (0..m)
        .into_par_iter()
        .map(|i| {
            let logits: Vec<f64> = (0..m)
                .map(|j| z[i].iter().zip(&z[j]).map(|(x, y)| x * y).sum::<f64>() / t)
                .collect();
            let max = (0..m)
                .filter(|&j| j != i)
                .map(|j| logits[j])
                .fold(f64::MIN, f64::max);
            let lse = max
                + (0..m)
                    .filter(|&j| j != i)
                    .map(|j| (logits[j] - max).exp())
                    .sum::<f64>()
                    .ln();
            lse - logits[(i + n) % m]
        })
        .sum();
    let want = total / m as f64;
    assert!(got.is_finite() && got > 0.0, "{got}");
    assert!(
        (got - want).abs() / want < 1e-4,
        "loss {got} vs float64 {want}"
    );
}

#[test]
fn optimizers_match_pytorch_over_three_steps() {
    let dev = device();
    let f = fixture("optimizers.json");
    let lrs: Vec<f64> = f["lrs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    for case in f["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let s = &case["spec"];
        let mut table = s.as_object().unwrap().clone();
        table.insert("lr".into(), 0.1.into());
        if table["kind"] == "adamw" {
            // AdamW has no momentum: its betas are PyTorch's defaults.
            table.remove("momentum");
            table.remove("nesterov");
        }
        let spec: OptimizerSpec = serde_json::from_value(Value::Object(table)).unwrap();
        let mut layer = burn::nn::LinearConfig::new(4, 3).init(&dev);
        let mut init = HashMap::new();
        init.insert(
            "weight".to_string(),
            HostTensor {
                shape: vec![4, 3],
                data: floats(&f["weight0"]),
            },
        );
        init.insert(
            "bias".to_string(),
            HostTensor {
                shape: vec![3],
                data: floats(&f["bias0"]),
            },
        );
        layer = load_module(layer, &init, "", Path::new("fixture")).unwrap();
        let mut opt = Optimizer::new(spec).unwrap();
        for (g, &lr) in f["grads"].as_array().unwrap().iter().zip(&lrs) {
            // loss = sum(W * Gw) + sum(b * Gb) has exactly the fixture's gradients.
            let gw = Tensor::<2>::from_data(TensorData::new(floats(&g["weight"]), [4, 3]), &dev);
            let gb = Tensor::<1>::from_data(TensorData::new(floats(&g["bias"]), [3]), &dev);
            let loss =
                (layer.weight.val() * gw).sum() + (layer.bias.as_ref().unwrap().val() * gb).sum();
            let grads = GradientsParams::from_grads(loss.backward(), &layer);
            layer = opt.step(lr, layer, grads);
        }
        assert_close(
            &format!("{name} weight"),
            &to_vec(layer.weight.val()),
            &floats(&case["weight"]),
            1e-5,
        );
        assert_close(
            &format!("{name} bias"),
            &to_vec(layer.bias.unwrap().val()),
            &floats(&case["bias"]),
            1e-5,
        );
    }
}

fn matrix(v: &Value, rows: usize, cols: usize, dev: &Device) -> Tensor<2> {
    Tensor::<2>::from_data(TensorData::new(floats(v), [rows, cols]), dev).require_grad()
}

fn usize_of(v: &Value) -> usize {
    v.as_u64().unwrap() as usize
}

#[test]
fn supcon_matches_pytorch_and_reduces_to_nt_xent_without_labels() {
    use contra::losses::SupConLoss;
    let dev = device();
    let f = fixture("losses.json");
    for case in f["supcon"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (n, d) = (usize_of(&case["n"]), usize_of(&case["d"]));
        let t = case["temperature"].as_f64().unwrap() as f32;
        let labels: Option<Vec<u32>> = case["labels"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_u64().unwrap() as u32).collect());
        let views: Vec<Tensor<2>> = case["views"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| matrix(v, n, d, &dev))
            .collect();
        let loss = SupConLoss::new(t).forward(&views, labels.as_deref());
        let grads = loss.backward();
        assert_close(
            &format!("supcon {name}"),
            &[loss.into_scalar::<f32>()],
            &[case["loss"].as_f64().unwrap() as f32],
            1e-5,
        );
        for (i, (v, g)) in views
            .iter()
            .zip(case["grads"].as_array().unwrap())
            .enumerate()
        {
            assert_grad(&format!("supcon {name} grad {i}"), v, &grads, g);
        }
        if labels.is_none() {
            let nt = NtXentLoss::new(t)
                .forward(views[0].clone(), views[1].clone())
                .into_scalar::<f32>();
            assert_close(
                &format!("supcon {name} = NT-Xent"),
                &[nt],
                &[case["loss"].as_f64().unwrap() as f32],
                1e-6,
            );
        }
    }
}

#[test]
fn info_nce_matches_pytorch_with_batch_and_bank_negatives() {
    use contra::losses::{InfoNceLoss, Negatives};
    let dev = device();
    for case in fixture("losses.json")["info_nce"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (n, d, m) = (
            usize_of(&case["n"]),
            usize_of(&case["d"]),
            usize_of(&case["m"]),
        );
        let q = matrix(&case["q"], n, d, &dev);
        let k = matrix(&case["k"], n, d, &dev);
        let negatives = if m == 0 {
            Negatives::InBatch
        } else {
            Negatives::Bank(matrix(&case["bank"], m, d, &dev))
        };
        let loss = InfoNceLoss::new(case["temperature"].as_f64().unwrap() as f32).forward(
            q.clone(),
            k.clone(),
            &negatives,
        );
        let grads = loss.backward();
        assert_close(
            &format!("info_nce {name}"),
            &[loss.into_scalar::<f32>()],
            &[case["loss"].as_f64().unwrap() as f32],
            1e-5,
        );
        assert_grad(
            &format!("info_nce {name} grad q"),
            &q,
            &grads,
            &case["grad_q"],
        );
        assert_grad(
            &format!("info_nce {name} grad k"),
            &k,
            &grads,
            &case["grad_k"],
        );
    }
}

#[test]
fn clip_and_siglip_match_pytorch_including_their_learnable_scales() {
    use contra::losses::{ClipLoss, SigLipLoss};
    let dev = device();
    let f = fixture("losses.json");
    for case in f["clip"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (n, d) = (usize_of(&case["n"]), usize_of(&case["d"]));
        let (img, txt) = (
            matrix(&case["img"], n, d, &dev),
            matrix(&case["txt"], n, d, &dev),
        );
        let loss_fn = ClipLoss::with_scale(case["scale"].as_f64().unwrap() as f32, &dev);
        let loss = loss_fn.forward(img.clone(), txt.clone());
        let grads = loss.backward();
        assert_close(
            &format!("clip {name}"),
            &[loss.into_scalar::<f32>()],
            &[case["loss"].as_f64().unwrap() as f32],
            1e-5,
        );
        assert_grad(
            &format!("clip {name} grad img"),
            &img,
            &grads,
            &case["grad_img"],
        );
        assert_grad(
            &format!("clip {name} grad txt"),
            &txt,
            &grads,
            &case["grad_txt"],
        );
        let gs = to_vec(loss_fn.logit_scale.val().grad(&grads).unwrap());
        assert_close(
            &format!("clip {name} grad scale"),
            &gs,
            &[case["grad_logit_scale"].as_f64().unwrap() as f32],
            1e-5,
        );
    }
    assert!(
        (contra::tensor_util::to_vec(ClipLoss::new(&dev).scale())[0] - 1.0 / 0.07).abs() < 1e-3
    );
    // Above 100 the scale still has its gradient (OpenCLIP clamps after the step, not in the
    // forward): the fixture's `above_clamp` case is at 150.
    assert!(
        f["clip"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["scale"].as_f64().unwrap() > 100.0
                && c["grad_logit_scale"].as_f64().unwrap().abs() > 1.0)
    );
    for case in f["siglip"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (n, d) = (usize_of(&case["n"]), usize_of(&case["d"]));
        let (img, txt) = (
            matrix(&case["img"], n, d, &dev),
            matrix(&case["txt"], n, d, &dev),
        );
        let loss_fn = SigLipLoss::with(
            case["scale"].as_f64().unwrap() as f32,
            case["bias"].as_f64().unwrap() as f32,
            &dev,
        );
        let loss = loss_fn.forward(img.clone(), txt.clone());
        let grads = loss.backward();
        assert_close(
            &format!("siglip {name}"),
            &[loss.into_scalar::<f32>()],
            &[case["loss"].as_f64().unwrap() as f32],
            1e-5,
        );
        assert_grad(
            &format!("siglip {name} grad img"),
            &img,
            &grads,
            &case["grad_img"],
        );
        assert_grad(
            &format!("siglip {name} grad txt"),
            &txt,
            &grads,
            &case["grad_txt"],
        );
        let gs = to_vec(loss_fn.logit_scale.val().grad(&grads).unwrap());
        assert_close(
            &format!("siglip {name} grad scale"),
            &gs,
            &[case["grad_logit_scale"].as_f64().unwrap() as f32],
            1e-5,
        );
        let gb = to_vec(loss_fn.logit_bias.val().grad(&grads).unwrap());
        assert_close(
            &format!("siglip {name} grad bias"),
            &gb,
            &[case["grad_bias"].as_f64().unwrap() as f32],
            1e-5,
        );
    }
}

/// After an optimizer step the scale is clamped to `[1, 100]` (its logarithm to `[0, ln 100]`)
/// as OpenCLIP clamps it, and neither CLIP's scale nor SigLIP's scale and bias takes weight
/// decay, whatever the optimizer's decay.
#[test]
fn logit_scales_clamp_after_the_step_and_never_decay() {
    use contra::losses::{ClipLoss, SigLipLoss};
    let dev = device();
    let scale_of = |l: &ClipLoss| to_vec(l.scale())[0];
    assert!((scale_of(&ClipLoss::with_scale(150.0, &dev).clamp()) - 100.0).abs() < 1e-3);
    assert!((scale_of(&ClipLoss::with_scale(0.5, &dev).clamp()) - 1.0).abs() < 1e-6);
    assert!((scale_of(&ClipLoss::with_scale(42.0, &dev).clamp()) - 42.0).abs() < 1e-3);

    // One SGD step with weight decay 0.5 and lr 0.1: each parameter moves by -lr * grad alone.
    let (img, txt) = (
        Tensor::<2>::random([5, 4], burn::tensor::Distribution::Default, &dev),
        Tensor::<2>::random([5, 4], burn::tensor::Distribution::Default, &dev),
    );
    let siglip = SigLipLoss::with(20.0, -5.0, &dev);
    let before = (
        to_vec(siglip.logit_scale.val())[0],
        to_vec(siglip.logit_bias.val())[0],
    );
    let grads = siglip.forward(img, txt).backward();
    let g = (
        to_vec(siglip.logit_scale.val().grad(&grads).unwrap())[0],
        to_vec(siglip.logit_bias.val().grad(&grads).unwrap())[0],
    );
    let grads = GradientsParams::from_grads(grads, &siglip);
    let mut opt = Optimizer::new(OptimizerSpec::sgd(0.1, 0.0, 0.5)).unwrap();
    let after = opt.step(0.1, siglip, grads);
    assert!((to_vec(after.logit_scale.val())[0] - (before.0 - 0.1 * g.0)).abs() < 1e-6);
    assert!((to_vec(after.logit_bias.val())[0] - (before.1 - 0.1 * g.1)).abs() < 1e-6);
}

#[test]
fn dcl_dclw_and_pair_loss_match_pytorch() {
    use contra::losses::{ContrastivePairLoss, DclLoss};
    let dev = device();
    let f = fixture("losses.json");
    for case in f["dcl"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (n, d) = (usize_of(&case["n"]), usize_of(&case["d"]));
        let t = case["temperature"].as_f64().unwrap() as f32;
        let loss_fn = match case["sigma"].as_f64() {
            Some(s) => DclLoss::dclw(t, s as f32),
            None => DclLoss::dcl(t),
        };
        let (a, b) = (
            matrix(&case["a"], n, d, &dev),
            matrix(&case["b"], n, d, &dev),
        );
        let loss = loss_fn.forward(a.clone(), b.clone());
        let grads = loss.backward();
        assert_close(
            name,
            &[loss.into_scalar::<f32>()],
            &[case["loss"].as_f64().unwrap() as f32],
            1e-5,
        );
        assert_grad(&format!("{name} grad a"), &a, &grads, &case["grad_a"]);
        assert_grad(&format!("{name} grad b"), &b, &grads, &case["grad_b"]);
    }
    for case in f["pair"].as_array().unwrap() {
        let (n, d) = (usize_of(&case["n"]), usize_of(&case["d"]));
        let similar: Vec<bool> = case["similar"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_bool().unwrap())
            .collect();
        let (x, y) = (
            matrix(&case["x"], n, d, &dev),
            matrix(&case["y"], n, d, &dev),
        );
        let loss = ContrastivePairLoss::new(case["margin"].as_f64().unwrap() as f32).forward(
            x.clone(),
            y.clone(),
            &similar,
        );
        let grads = loss.backward();
        assert_close(
            "pair",
            &[loss.into_scalar::<f32>()],
            &[case["loss"].as_f64().unwrap() as f32],
            1e-5,
        );
        assert_grad("pair grad x", &x, &grads, &case["grad_x"]);
        assert_grad("pair grad y", &y, &grads, &case["grad_y"]);
    }
    // Identical pairs: zero loss for similar ones, margin^2/2 for dissimilar ones, no NaN.
    let x = Tensor::<2>::ones([2, 3], &dev).require_grad();
    let loss = ContrastivePairLoss::new(2.0).forward(x.clone(), x.clone(), &[true, false]);
    let grads = loss.backward();
    assert_close(
        "identical pairs",
        &[loss.into_scalar::<f32>()],
        &[1.0],
        1e-6,
    );
    assert!(
        to_vec(x.grad(&grads).unwrap())
            .iter()
            .all(|g| g.is_finite())
    );
}

#[test]
fn triplet_loss_and_miners_match_pytorch() {
    use contra::losses::{Distance, Miner, TripletLoss};
    let dev = device();
    for case in fixture("losses.json")["triplet"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let labels: Vec<u32> = case["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let margin = case["margin"].as_f64().unwrap() as f32;
        let miner = match case["miner"].as_str().unwrap() {
            "batch_all" => Miner::BatchAll,
            "batch_hard" => Miner::BatchHard,
            "semihard" => Miner::SemiHard { margin },
            "hard" => Miner::Hard { margin },
            _ => Miner::Easy { margin },
        };
        let loss_fn = TripletLoss {
            margin,
            distance: if case["distance"] == "cosine" {
                Distance::Cosine
            } else {
                Distance::Euclidean
            },
            swap: case["swap"].as_bool().unwrap(),
            soft_margin: case["soft"].as_bool().unwrap(),
            normalize: case["normalize"].as_bool().unwrap_or(true),
        };
        let x = matrix(&case["x"], labels.len(), usize_of(&case["d"]), &dev);
        let mined = loss_fn.forward(x.clone(), &labels, miner);
        assert_eq!(
            mined.triplets,
            usize_of(&case["count"]),
            "{name}: triplet count"
        );
        let grads = mined.loss.backward();
        assert_close(
            name,
            &[mined.loss.into_scalar::<f32>()],
            &[case["loss"].as_f64().unwrap() as f32],
            1e-5,
        );
        assert_grad(&format!("{name} grad"), &x, &grads, &case["grad"]);
    }
}

#[test]
fn ts2vec_hierarchical_loss_matches_pytorch_in_value_and_gradient() {
    use contra::losses::HierarchicalLoss;
    let dev = device();
    for case in fixture("series.json")["hierarchical"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let shape = [
            usize_of(&case["b"]),
            usize_of(&case["t"]),
            usize_of(&case["c"]),
        ];
        let tensor = |v: &Value| {
            Tensor::<3>::from_data(TensorData::new(floats(v), shape), &dev).require_grad()
        };
        let (z1, z2) = (tensor(&case["z1"]), tensor(&case["z2"]));
        let loss = HierarchicalLoss::new(
            case["alpha"].as_f64().unwrap() as f32,
            usize_of(&case["temporal_unit"]),
        )
        .forward(z1.clone(), z2.clone());
        let grads = loss.backward();
        assert_close(
            &format!("hierarchical {name}"),
            &[loss.into_scalar::<f32>()],
            &[case["loss"].as_f64().unwrap() as f32],
            1e-5,
        );
        for (z, key) in [(&z1, "grad_z1"), (&z2, "grad_z2")] {
            match z.grad(&grads) {
                Some(g) => assert_close(
                    &format!("hierarchical {name} {key}"),
                    &to_vec(g),
                    &floats(&case[key]),
                    1e-5,
                ),
                // No term reached this input (one series of one step): PyTorch's gradient is 0.
                None => assert!(floats(&case[key]).iter().all(|&v| v == 0.0), "{name} {key}"),
            }
        }
    }
}

#[test]
fn ts2vec_encoder_matches_pytorch() {
    use contra::encoders::ts2vec::Ts2VecConfig;
    let dev = contra::device::parse("cpu").unwrap();
    let f = &fixture("series.json")["ts2vec_encoder"];
    let cfg = Ts2VecConfig {
        hidden: usize_of(&f["hidden"]),
        output: usize_of(&f["output"]),
        depth: usize_of(&f["depth"]),
        kernel: usize_of(&f["kernel"]),
        dropout: 0.0,
        ..Default::default()
    };
    let channels = usize_of(&f["channels"]);
    let weights: HashMap<String, HostTensor> = f["weights"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let shape = f["shapes"][k]
                .as_array()
                .unwrap()
                .iter()
                .map(usize_of)
                .collect();
            (
                k.clone(),
                HostTensor {
                    shape,
                    data: floats(v),
                },
            )
        })
        .collect();
    let enc = load_module(cfg.init(channels, &dev), &weights, "", Path::new("fixture")).unwrap();
    let (b, t) = (usize_of(&f["b"]), usize_of(&f["t"]));
    let x = Tensor::<3>::from_data(TensorData::new(floats(&f["x"]), [b, t, channels]), &dev);
    let keep = Tensor::<3>::from_data(TensorData::new(floats(&f["keep"]), [b, t, 1]), &dev);
    let z = to_vec(enc.forward(x, keep, None));
    assert_close("ts2vec encoder", &z, &floats(&f["z"]), 1e-5);
}

/// Resizing as torchvision's tensor transforms do: antialiased bilinear shrinking of a whole
/// image or of a crop box, and Resize(size) + CenterCrop(size).
#[test]
fn image_resizing_matches_pytorch_antialiased_interpolation() {
    use contra::image::Image;
    let f = fixture("resize.json");
    let dims = |v: &Value| -> Vec<usize> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect()
    };
    let image = |c: &Value| {
        let s = dims(&c["shape"]);
        Image {
            channels: s[0],
            height: s[1],
            width: s[2],
            data: floats(&c["image"]),
        }
    };
    for c in f["resample"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let b = dims(&c["box"]);
        let o = dims(&c["out"]);
        let got = image(c).crop_resize(
            b[0] as f32,
            b[1] as f32,
            b[2] as f32,
            b[3] as f32,
            o[0],
            o[1],
        );
        assert_close(name, &got.data, &floats(&c["expected"]), 1e-5);
    }
    for c in f["fit"].as_array().unwrap() {
        let size = c["size"].as_u64().unwrap() as usize;
        let got = image(c).resize_shorter_and_crop(size);
        assert_eq!((got.height, got.width), (size, size));
        assert_close("fit", &got.data, &floats(&c["expected"]), 1e-5);
    }
}

/// CSI's loss (NT-Xent over every shifted view plus the shift classifier's cross-entropy)
/// equals PyTorch's in value and in the gradients of both views and of the logits.
#[test]
fn shifted_instance_loss_matches_pytorch_in_value_and_gradient() {
    use contra::losses::ShiftedInstanceLoss;
    let dev = device();
    let f = fixture("csi.json");
    for case in f["losses"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let get = |k: &str| case[k].as_u64().unwrap() as usize;
        let (n, k, d) = (get("items"), get("shifts"), get("dim"));
        let tensor = |key: &str, shape: [usize; 2]| {
            Tensor::<2>::from_data(TensorData::new(floats(&case[key]), shape), &dev).require_grad()
        };
        let a = tensor("a", [k * n, d]);
        let b = tensor("b", [k * n, d]);
        let logits = tensor("logits", [2 * k * n, k]);
        let loss = ShiftedInstanceLoss::new(
            case["temperature"].as_f64().unwrap() as f32,
            case["shift_weight"].as_f64().unwrap() as f32,
        )
        .forward(a.clone(), b.clone(), logits.clone(), k);
        let grads = loss.backward();
        let value = loss.into_scalar::<f32>();
        assert_loss(name, value, case);
        assert_grad(&format!("{name} grad a"), &a, &grads, &case["grad_a"]);
        assert_grad(&format!("{name} grad b"), &b, &grads, &case["grad_b"]);
        assert_grad(
            &format!("{name} grad logits"),
            &logits,
            &grads,
            &case["grad_logits"],
        );
    }
}

/// The shifts are `torch.rot90` (counter-clockwise quarter turns) and an upside-down flip.
#[test]
fn csi_shifts_match_torch_rot90_and_flip() {
    use contra::methods::csi::Shift;
    let dev = contra::device::parse("cpu").unwrap();
    let f = &fixture("csi.json")["shifts"];
    let shape: Vec<usize> = f["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let x = Tensor::<4>::from_data(
        TensorData::new(floats(&f["x"]), [shape[0], shape[1], shape[2], shape[3]]),
        &dev,
    );
    assert_close(
        "identity",
        &to_vec(Shift::Identity.apply(x.clone())),
        &floats(&f["x"]),
        0.0,
    );
    for (shift, key) in [
        (Shift::Rotate90, "rotate_90"),
        (Shift::Rotate180, "rotate_180"),
        (Shift::Rotate270, "rotate_270"),
        (Shift::VerticalFlip, "vertical_flip"),
    ] {
        assert_close(key, &to_vec(shift.apply(x.clone())), &floats(&f[key]), 0.0);
    }
}

/// CSI's detection score (norm-weighted cosine to the nearest normal projection plus the
/// true shift's logit, each over its normal mean, averaged over shifts) equals NumPy's from
/// the paper's equations.
#[test]
fn csi_score_matches_the_papers_equations() {
    use contra::eval::shifted::{ShiftedFeatures, csi_scores};
    use contra::features::Features;
    let dev = contra::device::parse("cpu").unwrap();
    let f = &fixture("csi.json")["score"];
    let get = |k: &str| f[k].as_u64().unwrap() as usize;
    let (k, m, n, d) = (
        get("shifts"),
        get("normal_rows"),
        get("test_rows"),
        get("dim"),
    );
    let side = |z: &str, l: &str, rows: usize| {
        let (z, l) = (floats(&f[z]), floats(&f[l]));
        ShiftedFeatures {
            features: Vec::new(),
            projections: z
                .chunks(rows * d)
                .map(|c| Features {
                    data: c.to_vec(),
                    rows,
                    dim: d,
                })
                .collect(),
            true_shift_logits: l.chunks(rows).map(<[f32]>::to_vec).collect(),
        }
    };
    let normal = side("normal_projections", "normal_logits", m);
    let test = side("test_projections", "test_logits", n);
    assert_eq!(normal.projections.len(), k);
    let got: Vec<f32> = csi_scores(&normal, &test, &dev)
        .unwrap()
        .into_iter()
        .map(|s| s as f32)
        .collect();
    assert_close(
        "CSI anomaly scores",
        &got,
        &floats(&f["anomaly_scores"]),
        1e-5,
    );
    // A classifier that does not know the shifts (negative mean logit) is an error, not a
    // score with its sign flipped.
    let mut confused = side("normal_projections", "normal_logits", m);
    confused.true_shift_logits[1]
        .iter_mut()
        .for_each(|v| *v = -v.abs());
    let err = csi_scores(&confused, &test, &dev).unwrap_err().to_string();
    assert!(err.contains("shift 1"), "{err}");
}

/// NCAD's contextual loss (binary cross-entropy of 1 - exp(-d) on the distance of the unit
/// window and context embeddings) and its distances equal PyTorch's, gradients included.
#[test]
fn contextual_loss_matches_pytorch_in_value_and_gradient() {
    use contra::losses::ContextualLoss;
    let dev = device();
    for case in fixture("ncad.json")["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (b, d) = (
            case["windows"].as_u64().unwrap() as usize,
            case["dim"].as_u64().unwrap() as usize,
        );
        let tensor = |key: &str| {
            Tensor::<2>::from_data(TensorData::new(floats(&case[key]), [b, d]), &dev).require_grad()
        };
        let (whole, context) = (tensor("whole"), tensor("context"));
        let anomalous: Vec<bool> = case["anomalous"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_bool().unwrap())
            .collect();
        let distances = ContextualLoss::distances(whole.clone(), context.clone());
        assert_close(
            &format!("{name} distances"),
            &to_vec(distances),
            &floats(&case["distances"]),
            1e-5,
        );
        let loss = ContextualLoss.forward(whole.clone(), context.clone(), &anomalous);
        let grads = loss.backward();
        let value = loss.into_scalar::<f32>();
        assert_loss(name, value, case);
        assert_grad(
            &format!("{name} grad whole"),
            &whole,
            &grads,
            &case["grad_whole"],
        );
        assert_grad(
            &format!("{name} grad context"),
            &context,
            &grads,
            &case["grad_context"],
        );
    }
}

/// Mean-shifted contrast: the centre (mean of unit features, a unit vector for the angular
/// variant) and the loss about it equal PyTorch's in value and gradient; the centre takes no
/// gradient.
#[test]
fn mean_shifted_loss_and_centre_match_pytorch() {
    use contra::features::Features;
    use contra::losses::MeanShiftedLoss;
    use contra::methods::mean_shifted::centre_of;
    let dev = device();
    let f = fixture("mean_shifted.json");
    for case in f["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let get = |k: &str| case[k].as_u64().unwrap() as usize;
        let (n, d, m) = (get("items"), get("dim"), get("normal_rows"));
        let angular = case["angular_weight"].as_f64().unwrap() as f32;
        let normal = Features {
            data: floats(&case["normal"]),
            rows: m,
            dim: d,
        };
        let centre = centre_of(&normal, angular > 0.0);
        assert_close(
            &format!("{name} centre"),
            &centre,
            &floats(&case["centre"]),
            1e-6,
        );
        let tensor = |key: &str| {
            Tensor::<2>::from_data(TensorData::new(floats(&case[key]), [n, d]), &dev).require_grad()
        };
        let (a, b) = (tensor("a"), tensor("b"));
        let centre = Tensor::<1>::from_data(TensorData::new(centre, [d]), &dev).require_grad();
        let loss = MeanShiftedLoss::new(case["temperature"].as_f64().unwrap() as f32, angular)
            .forward(a.clone(), b.clone(), centre.clone());
        let grads = loss.backward();
        let value = loss.into_scalar::<f32>();
        assert_loss(name, value, case);
        assert_grad(&format!("{name} grad a"), &a, &grads, &case["grad_a"]);
        assert_grad(&format!("{name} grad b"), &b, &grads, &case["grad_b"]);
        assert!(centre.grad(&grads).is_none(), "{name}: the centre is fixed");
    }
}
