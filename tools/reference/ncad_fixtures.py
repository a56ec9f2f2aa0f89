"""Reference values for contra's contextual loss (crates/contra/src/losses/contextual.rs), the
loss of NCAD (Carmona et al. 2022) written in PyTorch float64 as the paper's classifier reads
it: the distance of the unit whole-window and context embeddings turned into the logit of
"different", log(1 - exp(-d)) + d, under binary cross-entropy with logits. Writes
crates/contra/tests/fixtures/ncad.json.

    ~/.venvs/ref/bin/python tools/reference/ncad_fixtures.py
"""
import json
import pathlib

import numpy as np
import torch
import torch.nn.functional as F

OUT = pathlib.Path(__file__).resolve().parents[2] / "crates" / "contra" / "tests" / "fixtures"


def contextual_loss(whole, context, y):
    d = torch.norm(F.normalize(whole, dim=1) - F.normalize(context, dim=1), dim=1)
    logits = torch.log(torch.clamp(1 - torch.exp(-d), 1e-10, 1)) + d
    return F.binary_cross_entropy_with_logits(logits, y), d


def main():
    rng = np.random.default_rng(31)
    cases = []
    for name, b, dim in [("six_windows", 6, 5), ("sixteen_windows", 16, 12)]:
        whole = torch.tensor(rng.normal(size=(b, dim)), requires_grad=True)
        # Contexts near their windows for some rows, far for others.
        near = torch.tensor(rng.normal(scale=0.2, size=(b, dim)))
        context = (whole.detach() + near * torch.tensor(rng.uniform(0.1, 5.0, size=(b, 1)))).requires_grad_(True)
        y = torch.tensor(rng.integers(0, 2, size=b).astype(np.float64))
        loss, d = contextual_loss(whole, context, y)
        loss.backward()
        cases.append({
            "name": name, "windows": b, "dim": dim,
            "whole": whole.detach().flatten().tolist(), "context": context.detach().flatten().tolist(),
            "anomalous": [bool(v) for v in y.tolist()], "loss": loss.item(), "distances": d.tolist(),
            "grad_whole": whole.grad.flatten().tolist(), "grad_context": context.grad.flatten().tolist(),
        })
    (OUT / "ncad.json").write_text(json.dumps({"cases": cases}))


if __name__ == "__main__":
    main()
