"""Reference values for contra's stream anomaly metrics (crates/contra/src/eval/ranges.rs):
VUS-ROC and VUS-PR from TSB-UAD's own implementation (`vus` 0.0.6, `metricor().
RangeAUC_volume_opt`, 250 thresholds), and F1 with point adjustment at K% (Kim et al. 2022)
written in NumPy from the paper's definition by brute force over every threshold. Writes
crates/contra/tests/fixtures/ranges.json.

    ~/.venvs/ref/bin/pip install --no-deps vus==0.0.6 && ~/.venvs/ref/bin/pip install pandas tqdm scikit-learn
    ~/.venvs/ref/bin/python tools/reference/range_fixtures.py
"""
import json
import pathlib

import numpy as np
from vus.utils.metrics import metricor

OUT = pathlib.Path(__file__).resolve().parents[2] / "crates" / "contra" / "tests" / "fixtures"


def segments(y):
    segs, start = [], None
    for t, v in enumerate(y):
        if v and start is None:
            start = t
        if not v and start is not None:
            segs.append((start, t - 1))
            start = None
    if start is not None:
        segs.append((start, len(y) - 1))
    return segs


def pa_k_f1(scores, y, k):
    """Best F1 over every distinct threshold; a segment is wholly detected when more than
    k% of its steps are flagged."""
    best = (0.0, None)
    for thr in sorted(set(scores.tolist()), reverse=True):
        pred = scores >= thr
        adj = pred.copy()
        for s, e in segments(y):
            if pred[s:e + 1].sum() > k / 100.0 * (e - s + 1):
                adj[s:e + 1] = True
            else:
                adj[s:e + 1] = pred[s:e + 1]
        tp = np.sum(adj & y)
        fp = np.sum(adj & ~y)
        fn = np.sum(~adj & y)
        f1 = 2 * tp / (2 * tp + fp + fn)
        if f1 > best[0]:
            best = (float(f1), float(thr))
    return best


def main():
    rng = np.random.default_rng(17)
    cases = []
    for name, n, segs, rounding in [
        ("three_segments", 300, [(50, 59), (120, 124), (290, 299)], None),
        ("near_segments_ties", 200, [(0, 3), (10, 14), (18, 30), (100, 100)], 1),
        ("long_stream", 1500, [(200, 260), (700, 705), (1100, 1180), (1400, 1401)], None),
    ]:
        y = np.zeros(n, dtype=bool)
        for s, e in segs:
            y[s:e + 1] = True
        scores = rng.random(n) + 0.6 * y + 0.3 * np.convolve(y, np.ones(7) / 7, mode="same")
        if rounding is not None:
            scores = np.round(scores, rounding)
        vus = {}
        for buffer in [0, 5, 16]:
            out = metricor().RangeAUC_volume_opt(y.astype(float), scores, buffer, 250)
            vus[str(buffer)] = [float(out[-2]), float(out[-1])]
        pa = {str(k): list(pa_k_f1(scores, y, k)) for k in [0, 10, 30, 50, 100]}
        cases.append({"name": name, "scores": scores.tolist(), "labels": y.tolist(),
                      "vus": vus, "pa_k": pa})
    values = rng.random(37).tolist()
    percentiles = {str(q): float(np.percentile(values, q)) for q in [2.5, 50, 97.5]}
    path = OUT / "ranges.json"
    path.write_text(json.dumps({"cases": cases, "percentile_values": values,
                                "percentiles": percentiles}))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
