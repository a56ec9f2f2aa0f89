"""PyTorch side of contra's benchmarks: the same SimCLR training step (eager fp32) and the same
augmentation pipeline with torchvision v2. Prints one JSON object per measurement.

    python bench/pytorch_bench.py train small_cnn 256 10 --threads 2
    python bench/pytorch_bench.py augment 5000
    python bench/pytorch_bench.py train resnet18 64 10 --device cuda
"""
import argparse
import json
import math
import pathlib
import sys
import time

import torch
import torch.nn as nn
import torchvision
from torchvision.transforms import v2

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tools" / "reference"))
from fixtures import dcl, nt_xent, supcon  # noqa: E402
from simclr_reference import SmallCnn, head  # noqa: E402


def resnet18_cifar():
    m = torchvision.models.resnet18()
    m.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    m.maxpool = nn.Identity()
    m.fc = nn.Identity()
    m.out_dim = 512
    return m


# Where a PyTorch step's time goes: each profiler event's own (self) time, by the phase it ran
# in (record_function labels below) and its op name. bench/perf_categories.py puts contra's
# samples into the same rows.
PROFILE_ROWS = [
    ("convolution forward", lambda ph, op: ph == "forward" and "conv" in op),
    ("convolution backward (input and weight gradient)", lambda ph, op: "convolution_backward" in op),
    ("batch norm", lambda ph, op: "batch_norm" in op),
    ("pooling", lambda ph, op: "pool" in op),
    ("optimizer", lambda ph, op: ph == "optimizer"),
    ("loss", lambda ph, op: ph == "loss"),
    ("matrix products (head)", lambda ph, op: op in ("aten::addmm", "aten::mm", "aten::bmm", "aten::matmul")),
    ("copies and concatenation", lambda ph, op: op in ("aten::copy_", "aten::cat", "aten::contiguous", "aten::clone")),
    ("allocation and zeroing", lambda ph, op: op in ("aten::empty", "aten::empty_strided", "aten::zero_", "aten::fill_", "aten::zeros", "aten::zeros_like", "aten::empty_like")),
    ("element-wise (activations, gradient sums)", lambda ph, op: True),
]


def profile_rows(prof, steps):
    events = prof.events()
    rows = {name: 0.0 for name, _ in PROFILE_ROWS}
    phases = ("forward", "loss", "backward", "optimizer")
    for e in events:
        if e.name in phases or e.name.startswith("ProfilerStep"):
            continue
        phase, p = None, e.cpu_parent
        while p is not None:
            if p.name in phases:
                phase = p.name
                break
            p = p.cpu_parent
        # Autograd runs backward ops on its own thread, outside the "backward" label.
        phase = phase or "backward"
        for name, match in PROFILE_ROWS:
            if match(phase, e.name):
                rows[name] += e.self_cpu_time_total / 1000 / steps
                break
    return rows


def train(kind, pairs, steps, channels_last, device="cpu", profile=False):
    torch.manual_seed(0)
    if kind == "small_cnn":
        enc, c, hw = SmallCnn(1), 1, 28
    else:
        enc, c, hw = resnet18_cifar(), 3, 32
    model = nn.Sequential(enc, head(enc.out_dim)).to(device)
    decay = [p for p in model.parameters() if p.ndim > 1]
    rest = [p for p in model.parameters() if p.ndim <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4}, {"params": rest, "weight_decay": 0.0}], lr=0.06, momentum=0.9)
    a, b = torch.randn(pairs, c, hw, hw, device=device), torch.randn(pairs, c, hw, hw, device=device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    warmup = 2
    label = torch.autograd.profiler.record_function
    prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) if profile else None
    for step in range(warmup + steps):
        if step == warmup:
            if prof is not None:
                prof.__enter__()
            start = time.perf_counter()
        x = torch.cat([a, b])
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with label("forward"):
            z = model(x)
        with label("loss"):
            loss = nt_xent(z[:pairs], z[pairs:], 0.5)
        loss.item()
        with label("optimizer"):
            opt.zero_grad()
        with label("backward"):
            loss.backward()
        with label("optimizer"):
            opt.step()
    secs = time.perf_counter() - start
    if prof is not None:
        prof.__exit__(None, None, None)
        rows = profile_rows(prof, steps)
        step_ms = 1000 * secs / steps
        rows["framework (dispatch, autograd engine, Python)"] = step_ms - sum(rows.values())
        print(json.dumps({"bench": "profile", "impl": "pytorch-eager", "model": kind, "pairs": pairs,
                          "threads": torch.get_num_threads(), "step_ms": step_ms,
                          "ms_per_step": {k: round(v, 2) for k, v in rows.items()}}))
        return
    name = "pytorch-eager" + ("-channels-last" if channels_last else "") + ("" if device == "cpu" else f"-{device}")
    print(json.dumps({"bench": "train", "impl": name, "model": kind, "pairs": pairs, "steps": steps,
                      "threads": torch.get_num_threads(), "images_per_second": 2 * pairs * steps / secs}))


def augment(images):
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(2)
    n = 512
    a, b, p = torch.rand(n, generator=g), torch.rand(n, generator=g), torch.rand(n, generator=g) * 2 * math.pi
    y, x = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    imgs = []
    for i in range(n):
        planes = [0.5 + 0.5 * torch.sin((x * a[i] + y * b[i]) * 0.3 + p[i] + c) for c in range(3)]
        imgs.append((torch.stack(planes) * 255).to(torch.uint8))
    t = v2.Compose([
        v2.RandomResizedCrop(32, scale=(0.08, 1.0)),
        v2.RandomHorizontalFlip(0.5),
        v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        v2.RandomGrayscale(0.2),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize([0.49, 0.48, 0.45], [0.25, 0.24, 0.26]),
    ])
    start = time.perf_counter()
    s = 0.0
    for i in range(images):
        s += float(t(imgs[i % n])[0, 0, 0])
    secs = time.perf_counter() - start
    print(json.dumps({"bench": "augment", "impl": "torchvision-v2", "threads": 1, "images": images,
                      "images_per_second": images / secs}))


def loss_bench(kind, n, d, reps=3, device="cpu"):
    import resource
    g = torch.Generator().manual_seed(3)
    a = torch.randn(n, d, generator=g).to(device)
    b = a + 0.3 * torch.randn(n, d, generator=g).to(device)
    labels = (torch.arange(n) % 100).to(device)
    times = []
    for _ in range(reps + 1):
        za, zb = a.clone().requires_grad_(), b.clone().requires_grad_()
        start = time.perf_counter()
        if kind == "nt_xent":
            loss = nt_xent(za, zb, 0.1)
        elif kind == "supcon":
            loss = supcon([za, zb], labels, 0.1)
        else:
            loss = dcl(za, zb, 0.1)
        loss.backward()
        za.grad.sum().item()
        times.append(time.perf_counter() - start)
    ms = 1000 * sum(times[1:]) / reps
    if device == "cpu":
        mem = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    else:
        mem = {"peak_gpu_mib": torch.cuda.max_memory_allocated() / 2**20}
    print(json.dumps({"bench": "loss", "impl": "pytorch" + ("" if device == "cpu" else f"-{device}"), "loss": kind, "n": n, "d": d, "ms": ms, **mem}))


def ts2vec_bench(batch, length, channels, steps, device="cpu"):
    """The TS2Vec step of contra-bench ts2vec: encoder (hidden 64, output 320, 10 blocks),
    two masked views of the whole series, the hierarchical loss, AdamW."""
    from fixtures import DilatedBlockRef, hierarchical_loss

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.input = nn.Linear(channels, 64)
            widths, cin, blocks = [64] * 10 + [320], 64, []
            for i, w in enumerate(widths):
                blocks.append(DilatedBlockRef(cin, w, 3, 2 ** i, i == len(widths) - 1))
                cin = w
            self.blocks = nn.Sequential(*blocks)
            self.dropout = nn.Dropout(0.1)

        def forward(self, x, keep):
            h = (self.input(x) * keep).transpose(1, 2)
            return self.dropout(self.blocks(h)).transpose(1, 2)

    torch.manual_seed(5)
    enc = Encoder().to(device)
    opt = torch.optim.AdamW(enc.parameters(), lr=1e-3, weight_decay=0.0)
    times = []
    for _ in range(steps + 1):
        x = torch.randn(batch, length, channels).to(device)
        m1 = (torch.rand(batch, length, 1) < 0.5).float().to(device)
        m2 = (torch.rand(batch, length, 1) < 0.5).float().to(device)
        start = time.perf_counter()
        loss = hierarchical_loss(enc(x, m1), enc(x, m2))
        opt.zero_grad()
        loss.backward()
        opt.step()
        enc.input.weight.sum().item()
        times.append(time.perf_counter() - start)
    secs = sum(times[1:])
    print(json.dumps({"bench": "ts2vec", "impl": "pytorch" + ("" if device == "cpu" else f"-{device}"), "batch": batch,
                      "length": length, "channels": channels, "steps": steps, "windows_per_second": batch * steps / secs}))


def search_bench(n, d, queries, k, device="cpu"):
    """Exact top-k cosine search, queries in blocks of about 64 MiB of similarities (contra's)."""
    import resource
    g = torch.Generator().manual_seed(4)
    index = torch.nn.functional.normalize(torch.randn(n, d, generator=g), dim=1).to(device)
    q = torch.randn(queries, d, generator=g).to(device)
    start = time.perf_counter()
    qn = torch.nn.functional.normalize(q, dim=1)
    block = max(1, min(4096, (64 << 20) // (4 * n)))
    out = []
    for i in range(0, queries, block):
        out.append(torch.topk(qn[i:i + block] @ index.T, k, dim=1).indices)
    top = torch.cat(out)
    checksum = int(top[:, 0].sum())
    secs = time.perf_counter() - start
    print(json.dumps({"bench": "search", "impl": "pytorch", "n": n, "d": d, "queries": queries, "k": k,
                      "seconds": secs, "ms_per_query": 1000 * secs / queries, "checksum": checksum,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["train", "augment", "loss", "search", "ts2vec"])
    ap.add_argument("args", nargs="*")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--profile", action="store_true", help="train: where a step's time goes")
    o = ap.parse_args()
    torch.set_num_threads(o.threads)
    if o.what == "train":
        train(o.args[0], int(o.args[1]), int(o.args[2]) if len(o.args) > 2 else 10, o.channels_last, o.device, o.profile)
    elif o.what == "loss":
        loss_bench(o.args[0], int(o.args[1]) if len(o.args) > 1 else 4096, int(o.args[2]) if len(o.args) > 2 else 128, device=o.device)
    elif o.what == "ts2vec":
        a = [int(x) for x in o.args] + [8, 150, 1, 10][len(o.args):]
        ts2vec_bench(*a[:4], device=o.device)
    elif o.what == "search":
        a = [int(x) for x in o.args] + [1_000_000, 128, 1000, 10][len(o.args):]
        search_bench(*a[:4], device=o.device)
    else:
        augment(int(o.args[0]) if o.args else 5000)
