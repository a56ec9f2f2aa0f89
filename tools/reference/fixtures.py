"""Fixture values for contra's Rust tests, computed with PyTorch (float64 for the reference
values, float32 inputs as stored)."""
import functools
import json
import math
import pathlib

import torch
import torch.nn.functional as F

OUT = pathlib.Path(__file__).resolve().parents[2] / "crates" / "contra" / "tests" / "fixtures"


def nt_xent(out0, out1, temperature):
    """NT-Xent over 2N views: for each view, the other view of the same item is the positive and
    the other 2N-2 embeddings are negatives; the self-similarity is excluded."""
    out0 = F.normalize(out0, dim=1)
    out1 = F.normalize(out1, dim=1)
    n = out0.shape[0]
    keep = ~torch.eye(n, dtype=torch.bool, device=out0.device)
    l00 = (out0 @ out0.T / temperature)[keep].view(n, -1)
    l11 = (out1 @ out1.T / temperature)[keep].view(n, -1)
    l01 = out0 @ out1.T / temperature
    l10 = out1 @ out0.T / temperature
    logits = torch.cat([torch.cat([l01, l00], 1), torch.cat([l10, l11], 1)], 0)
    labels = torch.arange(n, device=out0.device).repeat(2)
    return F.cross_entropy(logits, labels)


def nt_xent_cases():
    g = torch.Generator().manual_seed(0)
    cases = []
    specs = [
        ("random_t0.5", 8, 16, 0.5, None),
        ("random_t0.05", 8, 16, 0.05, None),
        ("random_t0.1_batch32", 32, 8, 0.1, None),
        ("duplicates_t0.1", 6, 8, 0.1, "duplicates"),
        ("identical_t0.01", 4, 8, 0.01, "identical"),
        ("zero_rows_t0.5", 4, 8, 0.5, "zeros"),
    ]
    for name, n, d, t, kind in specs:
        a = torch.randn(n, d, generator=g)
        b = torch.randn(n, d, generator=g)
        if kind == "duplicates":
            a[1] = a[0]
            b[3] = a[0]
        if kind == "identical":
            a[:] = a[0]
            b[:] = a[0]
        if kind == "zeros":
            a[2] = 0.0
        a32, b32 = a.float(), b.float()
        a64 = a32.double().requires_grad_()
        b64 = b32.double().requires_grad_()
        loss = nt_xent(a64, b64, t)
        loss.backward()
        cases.append({
            "name": name, "n": n, "d": d, "temperature": t,
            "a": a32.flatten().tolist(), "b": b32.flatten().tolist(),
            "loss": loss.item(),
            "grad_a": a64.grad.flatten().tolist(), "grad_b": b64.grad.flatten().tolist(),
        })
    return cases


def supcon(views, labels, temperature, base_temperature=None):
    """SupCon L_out (Khosla et al. 2020) over all views; anchors without a positive are left out
    of the mean."""
    base_temperature = base_temperature or temperature
    n = views[0].shape[0]
    z = F.normalize(torch.cat(views), dim=1)
    m = z.shape[0]
    lab = (torch.arange(n) if labels is None else torch.as_tensor(labels)).to(z.device).repeat(len(views))
    self_mask = torch.eye(m, dtype=torch.bool, device=z.device)
    pos = (lab[:, None] == lab[None, :]) & ~self_mask
    logits = (z @ z.T / temperature).masked_fill(self_mask, float("-inf"))
    log_prob = torch.log_softmax(logits, dim=1).masked_fill(self_mask, 0.0)
    count = pos.sum(1)
    valid = count > 0
    mean_pos = (log_prob * pos).sum(1)[valid] / count[valid]
    if mean_pos.numel() == 0:
        return (z * 0).sum()
    return -(temperature / base_temperature) * mean_pos.mean()


def info_nce(q, k, bank, temperature):
    q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
    if bank is None:
        logits, target = q @ k.T, torch.arange(q.shape[0])
    else:
        logits = torch.cat([(q * k).sum(1, keepdim=True), q @ F.normalize(bank, dim=1).T], 1)
        target = torch.zeros(q.shape[0], dtype=torch.long)
    return F.cross_entropy(logits / temperature, target)


@functools.cache
def open_clip_losses():
    """OpenCLIP's ClipLoss and SigLipLoss (open-clip-torch 3.3.0), from its loss module alone: the
    package's own import pulls in torchvision and timm, which the losses do not need. Loaded on
    first use, so that the benchmarks that import this module for other losses do not need it."""
    import importlib.util
    spec = importlib.util.find_spec("open_clip")
    if spec is None:
        raise SystemExit("pip install --no-deps open-clip-torch==3.3.0 (the CLIP and SigLIP fixtures use its losses)")
    path = pathlib.Path(spec.submodule_search_locations[0]) / "loss.py"
    module_spec = importlib.util.spec_from_file_location("open_clip_loss", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.ClipLoss(), module.SigLipLoss()



def clip_loss(img, txt, logit_scale):
    # OpenCLIP normalises in the towers and passes exp(logit_scale) unclamped (the clamp to
    # ln 100 follows each optimizer step).
    return open_clip_losses()[0](F.normalize(img, dim=1), F.normalize(txt, dim=1), logit_scale.exp())


def siglip_loss(img, txt, logit_scale, bias):
    return open_clip_losses()[1](F.normalize(img, dim=1), F.normalize(txt, dim=1), logit_scale.exp(), bias)


def dcl_one_way(a, b, temperature, weight_sigma):
    n = a.shape[0]
    off = ~torch.eye(n, dtype=torch.bool, device=a.device)
    s_aa, s_ab = a @ a.T / temperature, a @ b.T / temperature
    positive = -s_ab.diag()
    if weight_sigma is not None:
        positive = positive * (2 - n * torch.softmax((a * b).sum(1) / weight_sigma, dim=0))
    negatives = torch.cat([s_aa[off].view(n, -1), s_ab[off].view(n, -1)], 1)
    return (positive + torch.logsumexp(negatives, dim=1)).mean()


def dcl(za, zb, temperature, weight_sigma=None):
    """DCL / DCLW (Yeh et al. 2022): symmetric, positive left out of the denominator."""
    a, b = F.normalize(za, dim=1), F.normalize(zb, dim=1)
    return 0.5 * (dcl_one_way(a, b, temperature, weight_sigma) + dcl_one_way(b, a, temperature, weight_sigma))


def contrastive_pair(x, y, similar, margin):
    """Hadsell et al. 2006: Y D^2 / 2 + (1 - Y) max(0, m - D)^2 / 2, averaged."""
    d = (x - y).norm(dim=1)
    sim = torch.as_tensor(similar, dtype=x.dtype)
    return (0.5 * (sim * d ** 2 + (1 - sim) * torch.clamp(margin - d, min=0) ** 2)).mean()


def pairwise(x, distance, normalize=True):
    if distance == "euclidean" and not normalize:
        return torch.cdist(x, x)
    z = F.normalize(x, dim=1)
    if distance == "cosine":
        return 1 - z @ z.T
    return torch.cdist(z, z)


def mine(d, labels, miner, margin):
    """Triplet miners as pytorch-metric-learning defines them (all, hard, semihard, easy) plus
    batch-hard (Hermans et al. 2017): per anchor its farthest positive and nearest negative."""
    n = len(labels)
    out = []
    for a in range(n):
        pos = [p for p in range(n) if p != a and labels[p] == labels[a]]
        neg = [q for q in range(n) if labels[q] != labels[a]]
        if not pos or not neg:
            continue
        if miner == "batch_hard":
            p = max(pos, key=lambda j: (d[a, j].item(), -j))
            q = min(neg, key=lambda j: (d[a, j].item(), j))
            out.append((a, p, q))
            continue
        for p in pos:
            for q in neg:
                ap, an = d[a, p].item(), d[a, q].item()
                keep = {"batch_all": True, "semihard": ap < an < ap + margin,
                        "hard": an < ap + margin, "easy": an >= ap + margin}[miner]
                if keep:
                    out.append((a, p, q))
    return out


def triplet(x, labels, miner, margin, distance="euclidean", swap=False, soft=False, normalize=True):
    d = pairwise(x, distance, normalize)
    trips = mine(d.detach(), labels, miner, margin)
    if not trips:
        return (x * 0).sum(), 0
    a, p, q = (torch.tensor([t[i] for t in trips]) for i in range(3))
    ap, an = d[a, p], d[a, q]
    if swap:
        an = torch.minimum(an, d[p, q])
    per = F.softplus(ap - an) if soft else torch.clamp(ap - an + margin, min=0)
    active = max(int((per > 0).sum()), 1)
    return per.sum() / active, len(trips)


def leaf(x):
    return x.float().double().requires_grad_()


def flat(t):
    return t.detach().flatten().tolist()


def more_loss_cases():
    g = torch.Generator().manual_seed(2)
    out = {"supcon": [], "info_nce": [], "clip": [], "siglip": [], "dcl": [], "pair": [], "triplet": []}
    for name, n, d, t, labels, nviews in [
        ("labels", 8, 6, 0.1, [0, 1, 0, 2, 1, 1, 3, 0], 2),
        ("one_class", 5, 4, 0.07, [4, 4, 4, 4, 4], 2),
        ("no_labels", 6, 5, 0.5, None, 2),
        ("three_views_t0.01", 4, 5, 0.01, [0, 1, 1, 0], 3),
    ]:
        views = [leaf(torch.randn(n, d, generator=g)) for _ in range(nviews)]
        loss = supcon(views, labels, t)
        loss.backward()
        out["supcon"].append({"name": name, "n": n, "d": d, "temperature": t, "labels": labels,
                              "views": [flat(v) for v in views], "loss": loss.item(),
                              "grads": [flat(v.grad) for v in views]})
    for name, n, d, m, t in [("in_batch", 6, 5, 0, 0.2), ("bank", 5, 4, 7, 0.07)]:
        q, k = leaf(torch.randn(n, d, generator=g)), leaf(torch.randn(n, d, generator=g))
        bank = torch.randn(m, d, generator=g).float().double() if m else None
        loss = info_nce(q, k, bank, t)
        loss.backward()
        out["info_nce"].append({"name": name, "n": n, "d": d, "m": m, "temperature": t, "q": flat(q), "k": flat(k),
                                "bank": flat(bank) if m else [], "loss": loss.item(), "grad_q": flat(q.grad), "grad_k": flat(k.grad)})
    for name, n, d, scale in [("init", 6, 5, 1 / 0.07), ("above_clamp", 4, 3, 150.0), ("below_clamp", 5, 4, 90.0)]:
        img, txt = leaf(torch.randn(n, d, generator=g)), leaf(torch.randn(n, d, generator=g))
        ls = torch.tensor([math.log(scale)], dtype=torch.float64, requires_grad=True)
        loss = clip_loss(img, txt, ls)
        loss.backward()
        out["clip"].append({"name": name, "n": n, "d": d, "scale": scale, "img": flat(img), "txt": flat(txt), "loss": loss.item(),
                            "grad_img": flat(img.grad), "grad_txt": flat(txt.grad), "grad_logit_scale": ls.grad.item()})
    for name, n, d, scale, bias in [("init", 6, 5, 10.0, -10.0), ("trained", 5, 4, 30.0, -3.0)]:
        img, txt = leaf(torch.randn(n, d, generator=g)), leaf(torch.randn(n, d, generator=g))
        ls = torch.tensor([math.log(scale)], dtype=torch.float64, requires_grad=True)
        b = torch.tensor([bias], dtype=torch.float64, requires_grad=True)
        loss = siglip_loss(img, txt, ls, b)
        loss.backward()
        out["siglip"].append({"name": name, "n": n, "d": d, "scale": scale, "bias": bias, "img": flat(img), "txt": flat(txt),
                              "loss": loss.item(), "grad_img": flat(img.grad), "grad_txt": flat(txt.grad),
                              "grad_logit_scale": ls.grad.item(), "grad_bias": b.grad.item()})
    for name, n, d, t, sigma in [("dcl_t0.1", 6, 5, 0.1, None), ("dclw_t0.1", 6, 5, 0.1, 0.5), ("dcl_t0.01", 4, 3, 0.01, None)]:
        za, zb = leaf(torch.randn(n, d, generator=g)), leaf(torch.randn(n, d, generator=g))
        loss = dcl(za, zb, t, sigma)
        loss.backward()
        out["dcl"].append({"name": name, "n": n, "d": d, "temperature": t, "sigma": sigma, "a": flat(za), "b": flat(zb),
                           "loss": loss.item(), "grad_a": flat(za.grad), "grad_b": flat(zb.grad)})
    n, d = 6, 4
    x, y = leaf(torch.randn(n, d, generator=g)), leaf(torch.randn(n, d, generator=g) * 0.4)
    similar = [True, False, True, False, False, True]
    loss = contrastive_pair(x, y, similar, 1.5)
    loss.backward()
    out["pair"].append({"name": "mixed", "n": n, "d": d, "margin": 1.5, "similar": similar, "x": flat(x), "y": flat(y),
                        "loss": loss.item(), "grad_x": flat(x.grad), "grad_y": flat(y.grad)})
    labels8 = [0, 1, 2, 0, 1, 2, 0, 1]
    for name, labels, miner, margin, distance, swap, soft, dup, *raw in [
        ("batch_all", labels8, "batch_all", 0.2, "euclidean", False, False, False),
        ("batch_hard", labels8, "batch_hard", 0.2, "euclidean", False, False, False),
        ("batch_hard_ties_cosine", labels8, "batch_hard", 0.2, "cosine", False, False, True),
        ("semihard", labels8, "semihard", 0.5, "euclidean", False, False, False),
        ("hard_swap", labels8, "hard", 0.3, "euclidean", True, False, False),
        ("easy", labels8, "easy", 0.1, "euclidean", False, False, False),
        ("soft_cosine", labels8, "batch_all", 0.0, "cosine", False, True, False),
        ("one_class", [3] * 6, "batch_all", 0.2, "euclidean", False, False, False),
        # Raw (unnormalised) embeddings, as Hermans et al. train them.
        ("raw_batch_hard_soft", labels8, "batch_hard", 0.0, "euclidean", False, True, False, "raw"),
        ("raw_batch_all", labels8, "batch_all", 1.0, "euclidean", False, False, False, "raw"),
    ]:
        x = torch.randn(len(labels), 5, generator=g)
        if dup:
            x[4] = x[1]
            x[7] = x[1]
        x = leaf(x)
        loss, count = triplet(x, labels, miner, margin, distance, swap, soft, normalize=not raw)
        loss.backward()
        out["triplet"].append({"name": name, "labels": labels, "miner": miner, "margin": margin, "distance": distance,
                               "swap": swap, "soft": soft, "normalize": not raw, "x": flat(x), "d": 5, "loss": loss.item(), "count": count,
                               "grad": flat(x.grad)})
    return out


def hierarchical_loss(z1, z2, alpha=0.5, temporal_unit=0):
    """TS2Vec's hierarchical contrastive loss, written from the paper's definition: instance
    contrast (positives: the other view of the same series at the same time step, negatives:
    the other series at that step) and temporal contrast (positives: the other view at the same
    step, negatives: the other steps of the same series), at every scale of max pooling by 2."""
    def contrast(z, n):  # z: groups x 2n x C, partner of row r is r +- n
        sim = z @ z.transpose(1, 2)
        eye = torch.eye(2 * n, dtype=torch.bool)
        sim = sim.masked_fill(eye, float("-inf"))
        target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
        logp = torch.log_softmax(sim, dim=-1)
        return -logp[:, torch.arange(2 * n), target].mean()

    def instance(a, b):
        if a.shape[0] == 1:
            return a.new_zeros(())
        return contrast(torch.cat([a, b], 0).transpose(0, 1), a.shape[0])

    def temporal(a, b):
        if a.shape[1] == 1:
            return a.new_zeros(())
        return contrast(torch.cat([a, b], 1), a.shape[1])

    loss, depth = z1.new_zeros(()), 0
    while z1.shape[1] > 1:
        loss = loss + alpha * instance(z1, z2)
        if depth >= temporal_unit:
            loss = loss + (1 - alpha) * temporal(z1, z2)
        depth += 1
        z1 = torch.nn.functional.max_pool1d(z1.transpose(1, 2), 2).transpose(1, 2)
        z2 = torch.nn.functional.max_pool1d(z2.transpose(1, 2), 2).transpose(1, 2)
    if z1.shape[1] == 1:
        loss = loss + alpha * instance(z1, z2)
        depth += 1
    return loss / depth


class DilatedBlockRef(torch.nn.Module):
    def __init__(self, cin, cout, kernel, dilation, last):
        super().__init__()
        self.field = (kernel - 1) * dilation + 1
        pad = self.field // 2
        self.conv1 = torch.nn.Conv1d(cin, cout, kernel, padding=pad, dilation=dilation)
        self.conv2 = torch.nn.Conv1d(cout, cout, kernel, padding=pad, dilation=dilation)
        self.projector = torch.nn.Conv1d(cin, cout, 1) if cin != cout or last else None

    def same(self, conv, x):
        y = conv(x)
        return y[:, :, :-1] if self.field % 2 == 0 else y

    def forward(self, x):
        r = x if self.projector is None else self.projector(x)
        x = self.same(self.conv1, torch.nn.functional.gelu(x))
        return self.same(self.conv2, torch.nn.functional.gelu(x)) + r


def ts2vec_encoder_case(g):
    """The TS2Vec encoder's forward pass (input projection, mask, dilated residual blocks) on
    a small configuration, weights and output for contra's implementation."""
    channels, hidden, output, depth, kernel, b, t = 2, 8, 6, 2, 3, 2, 13
    torch.manual_seed(11)
    proj = torch.nn.Linear(channels, hidden)
    widths = [hidden] * depth + [output]
    blocks, cin = [], hidden
    for i, w in enumerate(widths):
        blocks.append(DilatedBlockRef(cin, w, kernel, 2 ** i, i == len(widths) - 1))
        cin = w
    x = torch.randn(b, t, channels, generator=g)
    keep = (torch.rand(b, t, 1, generator=g) > 0.3).float()
    h = (proj(x) * keep).transpose(1, 2)
    for blk in blocks:
        h = blk(h)
    z = h.transpose(1, 2)
    weights = {"input.weight": flat(proj.weight.t()), "input.bias": flat(proj.bias)}
    shapes = {"input.weight": [channels, hidden], "input.bias": [hidden]}
    for i, blk in enumerate(blocks):
        for name in ["conv1", "conv2", "projector"]:
            m = getattr(blk, name)
            if m is None:
                continue
            for p in ["weight", "bias"]:
                key = f"blocks.{i}.{name}.{p}"
                weights[key] = flat(getattr(m, p))
                shapes[key] = list(getattr(m, p).shape)
    return {"channels": channels, "hidden": hidden, "output": output, "depth": depth, "kernel": kernel,
            "b": b, "t": t, "x": flat(x), "keep": flat(keep), "weights": weights, "shapes": shapes, "z": flat(z)}


def series_cases():
    g = torch.Generator().manual_seed(5)
    out = {"hierarchical": []}
    for name, b, t, c, alpha, unit in [("odd_length", 4, 7, 5, 0.5, 0), ("instance_only", 3, 6, 4, 1.0, 0),
                                       ("unit1_single_series", 1, 9, 3, 0.5, 1), ("length1", 5, 1, 4, 0.5, 0)]:
        z1, z2 = leaf(torch.randn(b, t, c, generator=g)), leaf(torch.randn(b, t, c, generator=g))
        loss = hierarchical_loss(z1, z2, alpha, unit)
        loss.backward()
        out["hierarchical"].append({"name": name, "b": b, "t": t, "c": c, "alpha": alpha, "temporal_unit": unit,
                                    "z1": flat(z1), "z2": flat(z2), "loss": loss.item(),
                                    "grad_z1": flat(z1.grad), "grad_z2": flat(z2.grad)})
    out["ts2vec_encoder"] = ts2vec_encoder_case(g)
    return out


def lars_step(params, grads, bufs, lr, momentum, weight_decay, eta, first):
    """LARS (You et al. 2017) with SimCLR's exclusion of 1-d parameters from decay and
    adaptation, on top of SGD with momentum as torch implements it (first buffer = gradient)."""
    out = []
    for i, (p, g) in enumerate(zip(params, grads)):
        g = g.clone()
        if p.ndim > 1:
            g = g + weight_decay * p
            pn, gn = p.norm(), g.norm()
            q = eta * pn / gn if (pn > 0 and gn > 0) else torch.tensor(1.0, dtype=p.dtype)
            g = g * q
        bufs[i] = g.clone() if first else momentum * bufs[i] + g
        out.append(p - lr * bufs[i])
    return out


def optimizer_cases():
    g = torch.Generator().manual_seed(1)
    w0 = torch.randn(4, 3, generator=g).double()
    b0 = torch.randn(3, generator=g).double()
    grads = [(torch.randn(4, 3, generator=g).double(), torch.randn(3, generator=g).double()) for _ in range(3)]
    lrs = [0.1, 0.05, 2.5]
    cases = []

    def run(make):
        w = w0.clone().requires_grad_()
        b = b0.clone().requires_grad_()
        opt = make(w, b)
        for (gw, gb), lr in zip(grads, lrs):
            for group in opt.param_groups:
                group["lr"] = lr
            w.grad = gw.clone()
            b.grad = gb.clone()
            opt.step()
        return w.detach(), b.detach()

    sgd = lambda w, b: torch.optim.SGD([{"params": [w], "weight_decay": 5e-4}, {"params": [b], "weight_decay": 0.0}], lr=0.1, momentum=0.9)
    nesterov = lambda w, b: torch.optim.SGD([{"params": [w], "weight_decay": 1e-2}, {"params": [b], "weight_decay": 0.0}], lr=0.1, momentum=0.9, nesterov=True)
    adamw = lambda w, b: torch.optim.AdamW([{"params": [w], "weight_decay": 0.05}, {"params": [b], "weight_decay": 0.0}], lr=0.1, betas=(0.9, 0.999), eps=1e-8)
    for name, make, spec in [
        ("sgd", sgd, {"kind": "sgd", "momentum": 0.9, "weight_decay": 5e-4, "nesterov": False}),
        ("sgd_nesterov", nesterov, {"kind": "sgd", "momentum": 0.9, "weight_decay": 1e-2, "nesterov": True}),
        ("adamw", adamw, {"kind": "adamw", "momentum": 0.9, "weight_decay": 0.05, "nesterov": False}),
    ]:
        w, b = run(make)
        cases.append({"name": name, "spec": spec, "weight": w.flatten().tolist(), "bias": b.flatten().tolist()})
    params = [w0.clone(), b0.clone()]
    bufs = [None, None]
    for k, ((gw, gb), lr) in enumerate(zip(grads, lrs)):
        params = lars_step(params, [gw, gb], bufs, lr, 0.9, 1e-6, 1e-3, k == 0)
    cases.append({"name": "lars", "spec": {"kind": "lars", "momentum": 0.9, "weight_decay": 1e-6, "nesterov": False, "eta": 1e-3},
                  "weight": params[0].flatten().tolist(), "bias": params[1].flatten().tolist()})
    return {
        "weight0": w0.flatten().tolist(), "bias0": b0.tolist(), "lrs": lrs,
        "grads": [{"weight": gw.flatten().tolist(), "bias": gb.tolist()} for gw, gb in grads],
        "cases": cases,
    }


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "nt_xent.json").write_text(json.dumps({"cases": nt_xent_cases()}))
    (OUT / "optimizers.json").write_text(json.dumps(optimizer_cases()))
    (OUT / "losses.json").write_text(json.dumps(more_loss_cases()))
    (OUT / "series.json").write_text(json.dumps(series_cases()))
    print("wrote", OUT)
