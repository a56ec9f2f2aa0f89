"""Reference values for contra's CSI (crates/contra/src/losses/shifted_instance.rs, methods/
csi.rs, eval/shifted.rs), written from Tack et al. (2020): the loss (NT-Xent over every shifted
view, the item's other shifts among the negatives, plus the cross-entropy of the shift
classifier) in PyTorch float64 with its gradients; the shifts as `torch.rot90` and `torch.flip`;
and the detection score in NumPy from the paper's equations. Writes
crates/contra/tests/fixtures/csi.json.

    ~/.venvs/ref/bin/python tools/reference/csi_fixtures.py
"""
import json
import pathlib

import numpy as np
import torch
import torch.nn.functional as F

OUT = pathlib.Path(__file__).resolve().parents[2] / "crates" / "contra" / "tests" / "fixtures"


def shifted_instance_loss(z_a, z_b, logits, shifts, temperature, weight):
    """z_a, z_b: [K*N, D] shift-major; logits [2KN, K] (rows of z_a, then z_b)."""
    rows = z_a.shape[0]
    items = rows // shifts
    z = F.normalize(torch.cat([z_a, z_b]), dim=1)
    sim = z @ z.T / temperature
    sim = sim.masked_fill(torch.eye(2 * rows, dtype=torch.bool), float("-inf"))
    positive = torch.cat([torch.arange(rows, 2 * rows), torch.arange(rows)])
    contrast = F.cross_entropy(sim, positive)
    shift = (torch.arange(2 * rows) // items) % shifts
    return contrast + weight * F.cross_entropy(logits, shift)


def loss_cases(rng):
    cases = []
    for name, n, k, d, t, w in [("four_rotations", 3, 4, 5, 0.5, 1.0),
                                 ("two_shifts_weighted", 4, 2, 3, 0.2, 0.5)]:
        a = torch.tensor(rng.normal(size=(k * n, d)), requires_grad=True)
        b = torch.tensor(rng.normal(size=(k * n, d)), requires_grad=True)
        logits = torch.tensor(rng.normal(size=(2 * k * n, k)), requires_grad=True)
        loss = shifted_instance_loss(a, b, logits, k, t, w)
        loss.backward()
        cases.append({
            "name": name, "items": n, "shifts": k, "dim": d, "temperature": t, "shift_weight": w,
            "a": a.detach().flatten().tolist(), "b": b.detach().flatten().tolist(),
            "logits": logits.detach().flatten().tolist(), "loss": loss.item(),
            "grad_a": a.grad.flatten().tolist(), "grad_b": b.grad.flatten().tolist(),
            "grad_logits": logits.grad.flatten().tolist(),
        })
    return cases


def shift_case(rng):
    x = torch.tensor(rng.normal(size=(2, 2, 3, 3)))
    return {
        "shape": list(x.shape), "x": x.flatten().tolist(),
        "rotate_90": torch.rot90(x, 1, (2, 3)).flatten().tolist(),
        "rotate_180": torch.rot90(x, 2, (2, 3)).flatten().tolist(),
        "rotate_270": torch.rot90(x, 3, (2, 3)).flatten().tolist(),
        "vertical_flip": torch.flip(x, (2,)).flatten().tolist(),
    }


def score_case(rng):
    """s_CSI(x) = 1/K sum_k [max_m <z_k(x), z_k(x_m)/|z_k(x_m)|> / mean_m |z_k(x_m)|
    + l_k(x) / mean_m l_k(x_m)]; the anomaly score is -s_CSI."""
    k, m, n, d = 3, 7, 5, 4
    normal_z = rng.normal(size=(k, m, d))
    test_z = rng.normal(size=(k, n, d)) * rng.uniform(0.5, 2.0, size=(k, n, 1))
    normal_l = rng.normal(loc=2.0, size=(k, m))
    test_l = rng.normal(loc=1.0, size=(k, n))
    score = np.zeros(n)
    for s in range(k):
        axis = normal_z[s] / np.linalg.norm(normal_z[s], axis=1, keepdims=True)
        score += (test_z[s] @ axis.T).max(axis=1) / np.linalg.norm(normal_z[s], axis=1).mean()
        score += test_l[s] / normal_l[s].mean()
    return {
        "shifts": k, "normal_rows": m, "test_rows": n, "dim": d,
        "normal_projections": normal_z.flatten().tolist(), "test_projections": test_z.flatten().tolist(),
        "normal_logits": normal_l.flatten().tolist(), "test_logits": test_l.flatten().tolist(),
        "anomaly_scores": (-score / k).tolist(),
    }


def main():
    rng = np.random.default_rng(23)
    out = {"losses": loss_cases(rng), "shifts": shift_case(rng), "score": score_case(rng)}
    (OUT / "csi.json").write_text(json.dumps(out))


if __name__ == "__main__":
    main()
