"""Reference values for contra's evaluation metrics, computed independently: scikit-learn for
AUROC, average precision and the precision-recall curve; plain NumPy, written from the
definitions with a full sort, for the retrieval metrics, kNN and Mahalanobis anomaly scores
and the embedding diagnostics. Writes crates/contra/tests/fixtures/metrics.json.

    .venv/bin/python tools/reference/metrics_fixtures.py
"""
import json
import pathlib

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

OUT = pathlib.Path(__file__).resolve().parents[2] / "crates" / "contra" / "tests" / "fixtures"


def unit(x):
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def score_cases(rng):
    cases = []
    for name, n, rounding in [("distinct", 40, None), ("ties", 60, 1), ("heavy_ties", 30, 0)]:
        y = rng.random(n) < 0.3
        y[0], y[1] = True, False
        s = rng.normal(size=n) + 1.2 * y
        if rounding is not None:
            s = np.round(s, rounding)
        p, r, _ = precision_recall_curve(y, s)
        f1 = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-300), 0)
        cases.append({"name": name, "scores": s.tolist(), "positive": y.tolist(),
                      "auroc": roc_auc_score(y, s), "ap": average_precision_score(y, s),
                      "best_f1": float(f1.max())})
    return cases


def retrieval(q, ql, r, rl, exclude_self, ks):
    sims = unit(q) @ unit(r).T
    p1, hits, maps, rrs = [], {k: [] for k in ks}, [], []
    for i in range(len(q)):
        idx = np.arange(len(r))
        keep = idx != i if exclude_self else np.ones(len(r), bool)
        idx = idx[keep]
        # Most similar first, ties by lower index: a stable sort of the negated similarities.
        order = idx[np.argsort(-sims[i, idx], kind="stable")]
        rel = rl[order] == ql[i]
        R = int(rel.sum())
        if R == 0:
            continue
        p1.append(float(rel[0]))
        for k in ks:
            hits[k].append(float(rel[:k].any()))
        top = rel[:R]
        maps.append(float(np.sum(np.cumsum(top) / np.arange(1, R + 1) * top) / R))
        rrs.append(1.0 / (np.argmax(rel) + 1))
    return {"precision_at_1": np.mean(p1), "recall_at_k": [[k, np.mean(hits[k])] for k in ks],
            "map_at_r": np.mean(maps), "mean_reciprocal_rank": np.mean(rrs), "queries": len(p1)}


def retrieval_cases(rng):
    cases = []
    q = rng.normal(size=(30, 6)).astype(np.float32)
    ql = rng.integers(0, 4, 30)
    r = rng.normal(size=(50, 6)).astype(np.float32)
    rl = rng.integers(0, 5, 50)
    cases.append({"name": "separate", "q": q.ravel().tolist(), "ql": ql.tolist(), "r": r.ravel().tolist(),
                  "rl": rl.tolist(), "dim": 6, "exclude_self": False, "ks": [1, 2, 4, 8],
                  **retrieval(q, ql, r, rl, False, [1, 2, 4, 8])})
    # Queries are the references; clustered so that the metrics are far from chance; one
    # singleton class (no relevant reference) and duplicated rows (tied similarities).
    centers = rng.normal(size=(4, 5))
    lab = np.array([0] * 10 + [1] * 8 + [2] * 6 + [3])
    x = (centers[lab] + 0.8 * rng.normal(size=(25, 5))).astype(np.float32)
    x[5] = x[3]
    x[12] = x[3]
    cases.append({"name": "self", "q": x.ravel().tolist(), "ql": lab.tolist(), "r": x.ravel().tolist(),
                  "rl": lab.tolist(), "dim": 5, "exclude_self": True, "ks": [1, 5],
                  **retrieval(x, lab, x, lab, True, [1, 5])})
    return cases


def anomaly_case(rng):
    normal = (rng.normal(size=(40, 4)) * [1.0, 2.0, 0.5, 1.0] + [1, 0, 0, 2]).astype(np.float32)
    test = (rng.normal(size=(15, 4)) * 1.5 + [1, 0, 0, 2]).astype(np.float32)
    k = 3
    d = 1 - unit(test.astype(np.float64)) @ unit(normal.astype(np.float64)).T
    knn = np.sort(d, axis=1)[:, :k].mean(1)
    dn = 1 - unit(normal.astype(np.float64)) @ unit(normal.astype(np.float64)).T
    np.fill_diagonal(dn, np.inf)
    knn_self = np.sort(dn, axis=1)[:, :k].mean(1)
    eps = 0.01
    mu = normal.astype(np.float64).mean(0)
    cov = np.cov(normal.astype(np.float64), rowvar=False)
    cov += eps * np.trace(cov) / 4 * np.eye(4)
    inv = np.linalg.inv(cov)
    diff = test.astype(np.float64) - mu
    maha = np.einsum("ij,jk,ik->i", diff, inv, diff)
    return {"normal": normal.ravel().tolist(), "test": test.ravel().tolist(), "dim": 4, "k": k, "eps": eps,
            "knn": knn.tolist(), "knn_self": knn_self.tolist(), "mahalanobis": maha.tolist()}


def space_case(rng):
    a = rng.normal(size=(20, 6)).astype(np.float32)
    a[:, 3:] *= 0.1  # an anisotropic embedding: effective rank well below 6
    b = (a + 0.3 * rng.normal(size=(20, 6))).astype(np.float32)
    ua, ub = unit(a.astype(np.float64)), unit(b.astype(np.float64))
    align = np.mean(np.sum((ua - ub) ** 2, axis=1))
    iu = np.triu_indices(20, 1)
    sq = np.sum((ua[:, None] - ua[None]) ** 2, axis=2)[iu]
    uniform = np.log(np.mean(np.exp(-2 * sq)))
    s = np.linalg.svd(a.astype(np.float64), compute_uv=False)
    p = s / s.sum()
    erank = np.exp(-np.sum(p * np.log(p)))
    cos = ua @ ua.T
    return {"a": a.ravel().tolist(), "b": b.ravel().tolist(), "dim": 6, "alignment": align, "uniformity": uniform,
            "effective_rank": erank, "positive_cosine": np.mean(np.sum(ua * ub, axis=1)),
            "negative_cosine": cos[iu].mean()}


def probe_case():
    """scikit-learn's multinomial logistic regression (lbfgs, run to a tight tolerance) on
    standardised 8x8 digits: C = 1 / (lambda n) gives contra's objective."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x, y = load_digits(return_X_y=True)
    xtr, ytr, xte = x[:200].astype(np.float32), y[:200], x[200:300].astype(np.float32)
    scaler = StandardScaler().fit(xtr)
    lam = 0.01
    clf = LogisticRegression(C=1.0 / (lam * len(ytr)), tol=1e-10, max_iter=100000)
    clf.fit(scaler.transform(xtr), ytr)
    proba = clf.predict_proba(scaler.transform(xte))
    return {"train": xtr.ravel().tolist(), "train_labels": ytr.tolist(), "test": xte.ravel().tolist(),
            "dim": 64, "classes": 10, "l2": lam, "coef": clf.coef_.T.ravel().tolist(),
            "proba": proba.ravel().tolist(), "predicted": clf.predict(scaler.transform(xte)).tolist()}


def f1_case(rng):
    """Macro-F1 with a class that is never predicted and one that is predicted but absent."""
    from sklearn.metrics import f1_score

    truth = rng.integers(0, 4, 50)
    pred = np.where(rng.random(50) < 0.6, truth, rng.integers(0, 6, 50))
    pred[pred == 2] = 1
    pred[0] = 5
    truth[truth == 5] = 0
    return {"truth": truth.tolist(), "pred": pred.tolist(), "classes": 6,
            "macro_f1": f1_score(truth, pred, average="macro", zero_division=0)}


def svm_case(rng):
    """scikit-learn's SVC (libsvm) with an RBF kernel and gamma="scale" on three overlapping
    blobs: one-vs-one decision values and predictions, soft (C=1) and hard (C=inf) margins."""
    from sklearn.svm import SVC

    centres = np.array([[0.0, 0.0, 0.0], [1.5, 0.5, 0.0], [0.0, 1.5, 1.0]])
    lab = np.arange(60) % 3
    x = (centres[lab] + 0.7 * rng.normal(size=(60, 3))).astype(np.float32)
    tl = np.arange(40) % 3
    t = (centres[tl] + 0.7 * rng.normal(size=(40, 3))).astype(np.float32)
    out = {"x": x.ravel().tolist(), "y": lab.tolist(), "t": t.ravel().tolist(), "dim": 3, "classes": 3, "fits": []}
    for c in [1.0, np.inf]:
        svm = SVC(C=c, gamma="scale", decision_function_shape="ovo").fit(x, lab)
        out["fits"].append({"c": "inf" if np.isinf(c) else c, "gamma": 1.0 / (3 * x.astype(np.float64).var()),
                            "decision": svm.decision_function(t).ravel().tolist(), "predicted": svm.predict(t).tolist()})
    return out


def as_json(o):
    if isinstance(o, dict):
        return {k: as_json(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [as_json(v) for v in o]
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    return o


if __name__ == "__main__":
    rng = np.random.default_rng(7)
    out = {"scores": score_cases(rng), "retrieval": retrieval_cases(rng), "anomaly": anomaly_case(rng),
           "space": space_case(rng), "probe": probe_case(),
           "f1": f1_case(rng), "svm": svm_case(rng)}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "metrics.json").write_text(json.dumps(as_json(out)))
    print("wrote", OUT / "metrics.json")
