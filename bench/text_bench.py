"""PyTorch side of contra's text benchmarks: sentence-transformers embedding WordNet glosses
and training all-MiniLM-L6-v2 with MultipleNegativesRankingLoss (plain or cached), on the same
texts contra's bench uses (the first noun synsets of data.noun, in file order). Prints one
JSON object per measurement.

    python bench/text_bench.py embed 2048 64 --threads 2
    python bench/text_bench.py train 64 5 --threads 2
    python bench/text_bench.py train 1024 2 --mini-batch 32 --threads 2
"""
import argparse
import json
import os
import resource
import time

import torch
import torch.nn.functional as F


def nouns(n, path="/usr/share/wordnet/data.noun"):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("  ") or not line.strip():
                continue
            head, gloss = line.split(" | ", 1)
            fields = head.split()
            count = int(fields[3], 16)
            names = [fields[4 + 2 * i].replace("_", " ") for i in range(count)]
            gloss = "; ".join(p.strip() for p in gloss.rstrip().split(";") if p.strip() and not p.strip().startswith('"'))
            out.append((gloss, ", ".join(names)))
            if len(out) == n:
                break
    return out


def model_dir():
    root = os.environ.get("CONTRA_DATA", os.path.expanduser("~/.cache/contra-data"))
    return os.path.join(root, "models", "all-MiniLM-L6-v2")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["embed", "train"])
    ap.add_argument("n", type=int, help="texts to embed, or the batch size")
    ap.add_argument("arg", type=int, help="embedding batch, or training steps")
    ap.add_argument("--mini-batch", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from sentence_transformers import SentenceTransformer, losses

    model = SentenceTransformer(model_dir(), device="cpu")
    if a.what == "embed":
        texts = [g for g, _ in nouns(a.n)]
        model.encode(texts[: a.arg], batch_size=a.arg)
        t = time.perf_counter()
        model.encode(texts, batch_size=a.arg)
        s = time.perf_counter() - t
        print(json.dumps({"bench": "text_embed", "impl": "sentence-transformers", "texts": a.n,
                          "batch": a.arg, "threads": a.threads, "seconds": s, "texts_per_second": a.n / s}))
        return
    pairs = nouns(a.n * (a.arg + 1))
    model.train()
    loss_fn = (losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=a.mini_batch)
               if a.mini_batch else losses.MultipleNegativesRankingLoss(model))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-5)

    def step(i):
        batch = pairs[i * a.n:(i + 1) * a.n]
        feats = [model.tokenize([g for g, _ in batch]), model.tokenize([n for _, n in batch])]
        opt.zero_grad()
        loss = loss_fn(feats, None)
        loss.backward()
        opt.step()
        return loss.item()

    step(0)
    t = time.perf_counter()
    for i in range(1, a.arg + 1):
        step(i)
    s = time.perf_counter() - t
    print(json.dumps({"bench": "text_train", "impl": "sentence-transformers", "batch": a.n,
                      "mini_batch": a.mini_batch, "threads": a.threads, "steps": a.arg,
                      "steps_per_second": a.arg / s,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
