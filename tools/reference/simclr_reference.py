"""PyTorch reference of contra's SimCLR recipe on Fashion-MNIST, for side-by-side figures.

Same small CNN, projection head, NT-Xent, SGD (weight decay on weights only), warmup + cosine
per step, batch 256 with the last partial batch dropped, the same views (torchvision v2), then
the same evaluation: weighted kNN (k=200, t=0.1, cosine) on backbone features and a linear probe
on standardised features with 10 labels per class (5 seeds), each beside raw pixels.

    python tools/reference/simclr_reference.py --epochs 5 --threads 2
"""
import argparse
import gzip
import json
import math
import pathlib
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.transforms import v2

from fixtures import nt_xent
from models import SmallCnn, head  # noqa: F401  (bench/pytorch_bench.py imports them from here)

DATA = pathlib.Path("/usr/share/datasets/fashion-mnist")
MEAN, STD = 0.2860, 0.3530


def read_idx(path):
    raw = gzip.open(path).read()
    ndims = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndims)]
    return np.frombuffer(raw[4 + 4 * ndims:], dtype=np.uint8).reshape(dims)


def load(split):
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(DATA / f"{prefix}-images-idx3-ubyte.gz")
    y = read_idx(DATA / f"{prefix}-labels-idx1-ubyte.gz")
    return torch.from_numpy(x.copy()).unsqueeze(1), torch.from_numpy(y.astype(np.int64))


class Views(torch.utils.data.Dataset):
    def __init__(self, x):
        self.x = x
        self.t = v2.Compose([
            v2.RandomResizedCrop(28, scale=(0.2, 1.0), antialias=False),
            v2.RandomHorizontalFlip(0.5),
            v2.RandomApply([v2.ColorJitter(brightness=0.4, contrast=0.4)], p=0.8),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize([MEAN], [STD]),
        ])

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.t(self.x[i]), self.t(self.x[i])


def lr_at(step, peak, warmup, total):
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return peak * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))


@torch.no_grad()
def features(model, x, batch=512):
    model.eval()
    out = []
    for i in range(0, len(x), batch):
        xb = (x[i:i + batch].float() / 255 - MEAN) / STD
        out.append(model(xb))
    return torch.cat(out)


@torch.no_grad()
def knn(train_f, train_y, test_f, k=200, t=0.1, classes=10):
    train_f = F.normalize(train_f, dim=1)
    test_f = F.normalize(test_f, dim=1)
    preds = []
    for i in range(0, len(test_f), 1024):
        sim = test_f[i:i + 1024] @ train_f.T
        w, idx = sim.topk(k, dim=1)
        scores = torch.zeros(len(sim), classes, dtype=torch.float64)
        scores.scatter_add_(1, train_y[idx], (w / t).double().exp())
        preds.append(scores.argmax(1))
    return torch.cat(preds)


def probe(train_f, train_y, test_f, classes=10, steps=300, lr=0.01, wd=1e-4, seed=0):
    mean, std = train_f.mean(0), train_f.std(0, unbiased=False).clamp_min(1e-6)
    xs, xt = (train_f - mean) / std, (test_f - mean) / std
    torch.manual_seed(seed)
    lin = nn.Linear(xs.shape[1], classes)
    opt = torch.optim.AdamW([{"params": [lin.weight], "weight_decay": wd}, {"params": [lin.bias], "weight_decay": 0.0}], lr=lr)
    for s in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * s / steps))
        loss = F.cross_entropy(lin(xs), train_y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return lin(xt).argmax(1)


def few_label(train_f, train_y, test_f, test_y, n=10, seeds=5):
    knn_acc, probe_acc = [], []
    for seed in range(seeds):
        g = torch.Generator().manual_seed(seed)
        idx = torch.cat([torch.nonzero(train_y == c).flatten()[torch.randperm(int((train_y == c).sum()), generator=g)[:n]] for c in range(10)])
        knn_acc.append((knn(train_f[idx], train_y[idx], test_f, k=min(200, len(idx))) == test_y).float().mean().item())
        probe_acc.append((probe(train_f[idx], train_y[idx], test_f, seed=seed) == test_y).float().mean().item())
    return (float(np.mean(knn_acc)), float(np.std(knn_acc, ddof=1))), (float(np.mean(probe_acc)), float(np.std(probe_acc, ddof=1)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=0.12)
    ap.add_argument("--temperature", type=float, default=0.2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=str, default="")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    xtr, ytr = load("train")
    xte, yte = load("test")
    encoder, proj = SmallCnn(), head(256)
    model = nn.Sequential(encoder, proj)
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4}, {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, momentum=0.9)
    loader = torch.utils.data.DataLoader(Views(xtr), batch_size=args.batch, shuffle=True, drop_last=True,
                                         num_workers=args.workers, persistent_workers=args.workers > 0)
    steps_per_epoch = len(loader)
    total = steps_per_epoch * args.epochs
    warmup = round(0.5 * steps_per_epoch)
    step = 0
    start = time.time()
    for epoch in range(args.epochs):
        model.train()
        for a, b in loader:
            for g in opt.param_groups:
                g["lr"] = lr_at(step, args.lr, warmup, total)
            z = model(torch.cat([a, b]))
            loss = nt_xent(z[:len(a)], z[len(a):], args.temperature)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step % 20 == 0:
                el = time.time() - start
                print(f"step {step}/{total} loss {loss.item():.4f} {2 * args.batch * step / el:.0f} img/s", flush=True)
    train_s = time.time() - start
    ftr, fte = features(encoder, xtr), features(encoder, xte)
    rtr = ((xtr.float() / 255 - MEAN) / STD).flatten(1)
    rte = ((xte.float() / 255 - MEAN) / STD).flatten(1)
    res = {
        "train_seconds": train_s,
        "images_per_second": 2 * args.batch * total / train_s,
        "final_loss": loss.item(),
        "knn_learned": (knn(ftr, ytr, fte) == yte).float().mean().item(),
        "knn_raw": (knn(rtr, ytr, rte) == yte).float().mean().item(),
    }
    (res["fewshot_knn_learned"], res["fewshot_probe_learned"]) = few_label(ftr, ytr, fte, yte)
    (res["fewshot_knn_raw"], res["fewshot_probe_raw"]) = few_label(rtr, ytr, rte, yte)
    print(json.dumps(res, indent=1))
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
