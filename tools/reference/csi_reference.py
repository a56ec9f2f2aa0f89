"""PyTorch side of contra's CSI recipe on one-class Fashion-MNIST (recipes/csi-fashion-mnist.toml):
the same small CNN and head (tools/reference/models.py), a linear rotation classifier, every view
under the four rotations of `torch.rot90`, NT-Xent at 0.5 over all shifted views plus the rotation
cross-entropy, SGD 0.1 (momentum 0.9, weight decay 5e-4) with half an epoch of warmup and cosine
decay, batch 32 images. After each epoch it prints the test AUROC of the paper's score, of its
contrastive part alone and of kNN (k=5, cosine) on the upright images' encoder features.
Views: a random resized crop (scale 0.2-1, bilinear), a horizontal flip and brightness/contrast
jitter, written here with torch ops (no torchvision needed).

    python tools/reference/csi_reference.py CLASS EPOCHS BATCH WIDTHS
    python tools/reference/csi_reference.py 0 6 32 32,64,128,256
"""
import os, pathlib, sys, time, math, torch, torch.nn as nn, torch.nn.functional as F, numpy as np
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import gzip, random
MEAN, STD = 0.2860, 0.3530
def read_idx(path):
    raw = gzip.open(path).read(); nd = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(raw[4 + 4 * nd:], dtype=np.uint8).reshape(dims)
D = pathlib.Path(os.environ.get("FASHION_MNIST", "/usr/share/datasets/fashion-mnist"))
def load(split):
    p = "train" if split == "train" else "t10k"
    return torch.from_numpy(read_idx(D / f"{p}-images-idx3-ubyte.gz").copy()).unsqueeze(1), torch.from_numpy(read_idx(D / f"{p}-labels-idx1-ubyte.gz").astype(np.int64))
def lr_at(step, peak, warmup, total):
    if step < warmup: return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup); return peak * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
from models import SmallCnn, head
from sklearn.metrics import roc_auc_score
torch.set_num_threads(2); torch.manual_seed(0)
cls = int(sys.argv[1]); epochs = int(sys.argv[2]); B = int(sys.argv[3]); widths = tuple(int(w) for w in sys.argv[4].split(","))
scale = float(sys.argv[5]) if len(sys.argv) > 5 else 0.2
xtr, ytr = load("train"); xte, yte = load("test")
xn = xtr[ytr == cls]
def t(img):
    x = img.float().unsqueeze(0) / 255
    for _ in range(10):
        area = 784 * random.uniform(scale, 1.0); r = math.exp(random.uniform(math.log(3/4), math.log(4/3)))
        w = int(round(math.sqrt(area * r))); h = int(round(math.sqrt(area / r)))
        if 0 < w <= 28 and 0 < h <= 28: break
    else: w = h = 28
    i = random.randint(0, 28 - h); j = random.randint(0, 28 - w)
    x = F.interpolate(x[:, :, i:i+h, j:j+w], size=(28, 28), mode="bilinear", align_corners=False)
    if random.random() < 0.5: x = x.flip(3)
    if random.random() < 0.8:
        x = (x * random.uniform(0.6, 1.4)).clamp(0, 1)
        m = x.mean(); x = ((x - m) * random.uniform(0.6, 1.4) + m).clamp(0, 1)
    return ((x - MEAN) / STD)[0]
enc = SmallCnn(1, widths); proj = head(enc.out_dim); shift = nn.Linear(enc.out_dim, 4)
params = list(enc.parameters()) + list(proj.parameters()) + list(shift.parameters())
opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=5e-4)
rot = lambda x, k: torch.rot90(x, k, dims=(2, 3))
def ntx(z, tau=0.5):
    z = F.normalize(z, dim=1); n = z.shape[0] // 2
    s = z @ z.t() / tau; s.fill_diagonal_(-1e9)
    tgt = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(s, tgt)
steps_per = len(xn) // B; total = epochs * steps_per; step = 0
@torch.no_grad()
def feats(x):
    enc.eval(); proj.eval(); shift.eval(); zs, ls, hs = [], [], []
    for k in range(4):
        z_k, l_k, h_k = [], [], []
        for i in range(0, len(x), 1000):
            xb = rot((x[i:i+1000].float() / 255 - MEAN) / STD, k); h = enc(xb)
            z_k.append(proj(h)); l_k.append(shift(h)[:, k]); h_k.append(h)
        zs.append(torch.cat(z_k)); ls.append(torch.cat(l_k)); hs.append(torch.cat(h_k))
    return zs, ls, hs
def evaluate():
    ztr, ltr, htr = feats(xn); zte, lte, hte = feats(xte)
    y = (yte != cls).numpy()
    score = 0; con = 0
    for k in range(4):
        axis = F.normalize(ztr[k], dim=1)
        ws = 1 / ztr[k].norm(dim=1).mean(); wl = 1 / ltr[k].mean()
        c = (zte[k] @ axis.t()).max(dim=1).values
        score = score + c * ws + lte[k] * wl; con = con + c * ws
    knn = 1 - (F.normalize(hte[0], dim=1) @ F.normalize(htr[0], dim=1).t()).topk(5, dim=1).values.mean(1)
    return roc_auc_score(y, -score.numpy()), roc_auc_score(y, -con.numpy()), roc_auc_score(y, knn.numpy())
t0 = time.time()
for ep in range(epochs):
    enc.train(); proj.train(); shift.train()
    perm = torch.randperm(len(xn))
    for s in range(steps_per):
        for g in opt.param_groups: g["lr"] = lr_at(step, 0.1, steps_per // 2, total)
        idx = perm[s * B:(s + 1) * B]; x = xn[idx]
        a = torch.stack([t(i) for i in x]); b = torch.stack([t(i) for i in x])
        A = torch.cat([rot(a, k) for k in range(4)]); Bv = torch.cat([rot(b, k) for k in range(4)])
        X = torch.cat([A, Bv]); labels = torch.arange(4).repeat_interleave(B).repeat(2)
        h = enc(X); loss = ntx(proj(h)) + F.cross_entropy(shift(h), labels)
        opt.zero_grad(); loss.backward(); opt.step(); step += 1
    print(f"epoch {ep+1} loss {loss.item():.4f} {time.time()-t0:.0f}s auroc csi/con/knn", evaluate(), flush=True)
