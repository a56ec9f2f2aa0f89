//! Evaluation metrics against independent computations (scikit-learn and NumPy written from
//! the definitions: tools/reference/metrics_fixtures.py).

use contra::eval::{Features, anomaly, retrieval, scores, space};
use serde_json::Value;

fn fixtures() -> Value {
    serde_json::from_str(include_str!("fixtures/metrics.json")).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn labels(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn features(v: &Value, dim: &Value) -> Features {
    let data: Vec<f32> = floats(v).into_iter().map(|x| x as f32).collect();
    let dim = dim.as_u64().unwrap() as usize;
    Features {
        rows: data.len() / dim,
        data,
        dim,
    }
}

fn close(name: &str, got: f64, want: &Value, tol: f64) {
    let want = want.as_f64().unwrap();
    assert!(
        (got - want).abs() <= tol * want.abs().max(1.0),
        "{name}: {got} vs {want}"
    );
}

fn cpu() -> contra::Device {
    contra::device::parse("cpu").unwrap()
}

#[test]
fn auroc_average_precision_and_best_f1_equal_scikit_learn() {
    for case in fixtures()["scores"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let s = floats(&case["scores"]);
        let y: Vec<bool> = case["positive"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_bool().unwrap())
            .collect();
        close(name, scores::auroc(&s, &y).unwrap(), &case["auroc"], 1e-12);
        close(
            name,
            scores::average_precision(&s, &y).unwrap(),
            &case["ap"],
            1e-12,
        );
        close(
            name,
            scores::best_f1(&s, &y).unwrap().0,
            &case["best_f1"],
            1e-12,
        );
    }
}

#[test]
fn retrieval_metrics_equal_a_full_sort_by_definition() {
    for case in fixtures()["retrieval"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let ks: Vec<usize> = labels(&case["ks"])
            .into_iter()
            .map(|k| k as usize)
            .collect();
        let r = retrieval::evaluate(
            &features(&case["q"], &case["dim"]),
            &labels(&case["ql"]),
            &features(&case["r"], &case["dim"]),
            &labels(&case["rl"]),
            case["exclude_self"].as_bool().unwrap(),
            &ks,
            &cpu(),
        );
        assert_eq!(
            r.queries as u64,
            case["queries"].as_u64().unwrap(),
            "{name}"
        );
        close(name, r.precision_at_1, &case["precision_at_1"], 1e-9);
        close(name, r.map_at_r, &case["map_at_r"], 1e-9);
        close(
            name,
            r.mean_reciprocal_rank,
            &case["mean_reciprocal_rank"],
            1e-9,
        );
        for ((k, got), want) in r
            .recall_at_k
            .iter()
            .zip(case["recall_at_k"].as_array().unwrap())
        {
            assert_eq!(*k as u64, want[0].as_u64().unwrap());
            close(&format!("{name} R@{k}"), *got, &want[1], 1e-9);
        }
    }
}

#[test]
fn anomaly_scores_equal_brute_force_and_matrix_inverse() {
    let case = &fixtures()["anomaly"];
    let normal = features(&case["normal"], &case["dim"]);
    let test = features(&case["test"], &case["dim"]);
    let k = case["k"].as_u64().unwrap() as usize;
    let knn = anomaly::knn_scores(&normal, &test, k, false, &cpu());
    for (g, w) in knn.iter().zip(case["knn"].as_array().unwrap()) {
        close("knn", *g, w, 1e-5);
    }
    let knn_self = anomaly::knn_scores(&normal, &normal, k, true, &cpu());
    for (g, w) in knn_self.iter().zip(case["knn_self"].as_array().unwrap()) {
        close("knn self", *g, w, 1e-5);
    }
    let m = anomaly::Mahalanobis::fit(&normal, case["eps"].as_f64().unwrap()).unwrap();
    for (g, w) in m
        .scores(&test)
        .iter()
        .zip(case["mahalanobis"].as_array().unwrap())
    {
        close("mahalanobis", *g, w, 1e-9);
    }
}

#[test]
fn alignment_uniformity_and_effective_rank_equal_numpy() {
    let case = &fixtures()["space"];
    let r = space::diagnose(
        &features(&case["a"], &case["dim"]),
        &features(&case["b"], &case["dim"]),
    );
    close("alignment", r.alignment, &case["alignment"], 1e-9);
    close("uniformity", r.uniformity, &case["uniformity"], 1e-9);
    close(
        "effective rank",
        r.effective_rank,
        &case["effective_rank"],
        1e-9,
    );
    close(
        "positive cosine",
        r.positive_cosine,
        &case["positive_cosine"],
        1e-9,
    );
    close(
        "negative cosine",
        r.negative_cosine,
        &case["negative_cosine"],
        1e-9,
    );
}

#[test]
fn linear_probe_matches_scikit_learn_logistic_regression() {
    use contra::eval::linear;
    let case = &fixtures()["probe"];
    let train = features(&case["train"], &case["dim"]);
    let test = features(&case["test"], &case["dim"]);
    let y = labels(&case["train_labels"]);
    let classes = case["classes"].as_u64().unwrap() as usize;
    let l2 = case["l2"].as_f64().unwrap();
    let device = contra::device::parse("cpu").unwrap();
    let cfg = contra::optim::lbfgs::LbfgsConfig {
        grad_tol: 1e-7,
        max_iter: 5000,
        ..Default::default()
    };
    let probe = linear::fit(&train, &y, classes, l2, &cfg, &device);
    assert!(probe.converged, "{} iterations", probe.iterations);
    let coef = floats(&case["coef"]);
    let scale = coef.iter().fold(0f64, |m, v| m.max(v.abs()));
    for (i, (got, want)) in probe.weights.iter().zip(&coef).enumerate() {
        assert!(
            (got - want).abs() <= 2e-3 * scale,
            "coefficient {i}: {got} vs {want}"
        );
    }
    // Class probabilities of held-out rows.
    let logits = probe.logits(&test, &device);
    let proba = floats(&case["proba"]);
    for (r, (row, want)) in logits
        .chunks_exact(classes)
        .zip(proba.chunks_exact(classes))
        .enumerate()
    {
        let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
        let z: f64 = row.iter().map(|&v| (v as f64 - m).exp()).sum();
        for (c, (&v, w)) in row.iter().zip(want).enumerate() {
            let p = (v as f64 - m).exp() / z;
            assert!((p - w).abs() < 2e-3, "row {r} class {c}: {p} vs {w}");
        }
    }
    assert_eq!(probe.predict(&test, &device), labels(&case["predicted"]));
}

#[test]
fn macro_f1_matches_scikit_learn() {
    let case = &fixtures()["f1"];
    let got = contra::eval::macro_f1(
        &labels(&case["pred"]),
        &labels(&case["truth"]),
        case["classes"].as_u64().unwrap() as usize,
    );
    close("macro-F1", got, &case["macro_f1"], 1e-12);
}

#[test]
fn rbf_svm_matches_scikit_learn_svc() {
    use contra::eval::svm::{Svm, scale_gamma};
    let case = &fixtures()["svm"];
    let x = features(&case["x"], &case["dim"]);
    let t = features(&case["t"], &case["dim"]);
    let y = labels(&case["y"]);
    let gamma = scale_gamma(&x);
    for fit in case["fits"].as_array().unwrap() {
        close("gamma", gamma, &fit["gamma"], 1e-6);
        let c = fit["c"].as_f64().unwrap_or(f64::INFINITY);
        let svm = Svm::fit(&x, &y, 3, c, gamma).unwrap();
        let want = floats(&fit["decision"]);
        for r in 0..t.rows {
            for (k, d) in svm.decisions(t.row(r)).iter().enumerate() {
                let w = want[r * 3 + k];
                // Both stop SMO at the same tolerance (1e-3) by different paths (libsvm shrinks).
                assert!(
                    (d - w).abs() < 0.02 * w.abs().max(1.0),
                    "C {c} row {r} pair {k}: {d} vs {w}"
                );
            }
        }
        assert_eq!(svm.predict(&t), labels(&fit["predicted"]), "C {c}");
    }
}

/// Stream metrics against references: VUS-ROC and VUS-PR against TSB-UAD's own
/// implementation (`vus` 0.0.6), best F1 with point adjustment at K% against a brute-force
/// NumPy version of Kim et al.'s definition, percentiles against NumPy
/// (tools/reference/range_fixtures.py).
#[test]
fn range_metrics_match_their_reference_implementations() {
    use contra::eval::ranges::{best_pa_k_f1, percentile, vus};
    let f: Value =
        serde_json::from_str(include_str!("fixtures/ranges.json")).expect("ranges fixture");
    for c in f["cases"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let scores = floats(&c["scores"]);
        let labels: Vec<bool> = c["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_bool().unwrap())
            .collect();
        for (buffer, want) in c["vus"].as_object().unwrap() {
            let want = floats(want);
            let (roc, pr) = vus(&scores, &labels, buffer.parse().unwrap(), 250).unwrap();
            assert!(
                (roc - want[0]).abs() < 1e-9 && (pr - want[1]).abs() < 1e-9,
                "{name} buffer {buffer}: VUS-ROC {roc} VUS-PR {pr}, TSB-UAD {want:?}"
            );
        }
        for (k, want) in c["pa_k"].as_object().unwrap() {
            let want = floats(want);
            let (f1, threshold) = best_pa_k_f1(&scores, &labels, k.parse().unwrap()).unwrap();
            assert!(
                (f1 - want[0]).abs() < 1e-12 && threshold == want[1],
                "{name} K {k}: {f1} at {threshold}, NumPy {want:?}"
            );
        }
    }
    let mut values = floats(&f["percentile_values"]);
    values.sort_by(f64::total_cmp);
    for (q, want) in f["percentiles"].as_object().unwrap() {
        let got = percentile(&values, q.parse().unwrap());
        assert!((got - want.as_f64().unwrap()).abs() < 1e-12, "{q}: {got}");
    }
}
