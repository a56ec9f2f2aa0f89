"""Reference values for contra's mean-shifted contrast (crates/contra/src/losses/mean_shifted.rs,
methods/mean_shifted.rs), written from Reiss and Hoshen (2023): the centre (the mean of the
normal features' unit vectors, made a unit vector for the angular variant) and the loss
(NT-Xent at temperature t over the unit vectors of the features minus the centre, plus
lambda times the mean squared distance of each view's unit features to the centre), in PyTorch
float64 with the features' gradients. Writes crates/contra/tests/fixtures/mean_shifted.json.

    ~/.venvs/ref/bin/python tools/reference/mean_shifted_fixtures.py
"""
import json
import pathlib

import numpy as np
import torch
import torch.nn.functional as F

OUT = pathlib.Path(__file__).resolve().parents[2] / "crates" / "contra" / "tests" / "fixtures"


def centre_of(features, unit):
    c = F.normalize(features, dim=1).mean(dim=0)
    return F.normalize(c, dim=0) if unit else c


def nt_xent(u_a, u_b, t):
    n = u_a.shape[0]
    u = F.normalize(torch.cat([u_a, u_b]), dim=1)
    logits = (u @ u.T / t).masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    positive = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(logits, positive)


def mean_shifted_loss(f_a, f_b, centre, t, angular):
    s_a = F.normalize(f_a, dim=1) - centre
    s_b = F.normalize(f_b, dim=1) - centre
    loss = nt_xent(s_a, s_b, t)
    if angular > 0:
        loss = loss + angular * ((s_a ** 2).sum(1).mean() + (s_b ** 2).sum(1).mean())
    return loss


def cases(rng):
    out = []
    for name, n, d, m, t, angular in [("plain", 4, 6, 9, 0.25, 0.0),
                                       ("angular", 5, 3, 7, 0.25, 1.0),
                                       ("angular_half_warm", 3, 5, 6, 0.5, 0.5)]:
        # Non-negative features with a common direction, as ReLU features after pooling are.
        normal = torch.tensor(np.abs(rng.normal(loc=1.0, size=(m, d))))
        centre = centre_of(normal, angular > 0)
        f_a = torch.tensor(np.abs(rng.normal(loc=1.0, size=(n, d))), requires_grad=True)
        f_b = torch.tensor(np.abs(rng.normal(loc=1.0, size=(n, d))), requires_grad=True)
        loss = mean_shifted_loss(f_a, f_b, centre, t, angular)
        loss.backward()
        out.append({
            "name": name, "items": n, "dim": d, "normal_rows": m, "temperature": t,
            "angular_weight": angular, "normal": normal.flatten().tolist(),
            "centre": centre.tolist(), "a": f_a.detach().flatten().tolist(),
            "b": f_b.detach().flatten().tolist(), "loss": loss.item(),
            "grad_a": f_a.grad.flatten().tolist(), "grad_b": f_b.grad.flatten().tolist(),
        })
    return out


def main():
    rng = np.random.default_rng(17)
    path = OUT / "mean_shifted.json"
    path.write_text(json.dumps({"cases": cases(rng)}, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
