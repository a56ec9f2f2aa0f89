"""PyTorch side of contra's CLIP throughput benchmark: the same training step as
`contra-bench clip-train` (the emoji recipe's towers): the small CNN on random 3x32x32
images, and a text tower either frozen (its outputs cached: random 384-d rows) or a 2-layer,
128-wide BERT from scratch (transformers' BertModel, mean pooling, L2-normalised) on WordNet
synset names with all-MiniLM-L6-v2's tokenizer; linear projections without bias to 128,
OpenCLIP's ClipLoss, AdamW, the scale clamped after each step as OpenCLIP does. Eager fp32.

    python bench/clip_bench.py 128 10 frozen --threads 2
    python bench/clip_bench.py 128 10 scratch --threads 2
"""
import argparse
import json
import math
import os
import pathlib
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tools" / "reference"))
from fixtures import open_clip_losses  # noqa: E402  (OpenCLIP's ClipLoss)
from models import SmallCnn  # noqa: E402
from text_bench import model_dir, nouns  # noqa: E402


class TextTower(nn.Module):
    def __init__(self):
        super().__init__()
        from transformers import BertConfig, BertModel
        config = BertConfig.from_pretrained(model_dir())
        config.num_hidden_layers, config.hidden_size, config.num_attention_heads = 2, 128, 2
        config.intermediate_size = 512
        self.bert = BertModel(config, add_pooling_layer=False)

    def forward(self, ids, mask):
        states = self.bert(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).float()
        pooled = (states * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, dim=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("batch", type=int)
    ap.add_argument("steps", type=int)
    ap.add_argument("text", choices=["frozen", "scratch"])
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    image = SmallCnn(3)
    scratch = a.text == "scratch"
    text = TextTower() if scratch else None
    image_proj = nn.Linear(image.out_dim, 128, bias=False)
    text_proj = nn.Linear(128 if scratch else 384, 128, bias=False)
    logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
    modules = [image, image_proj, text_proj] + ([text] if scratch else [])
    params = [p for m in modules for p in m.parameters()]
    decay = [p for p in params if p.ndim > 1]
    rest = [p for p in params if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0},
                             {"params": [logit_scale], "weight_decay": 0.0}], lr=1e-3)
    pixels = torch.randn(a.batch, 3, 32, 32)
    cached = torch.randn(a.batch, 384)
    names = [n for _, n in nouns(a.batch * (a.steps + 2))]
    tokenizer = None
    if scratch:
        from transformers import AutoTokenizer
        tokenizer = AutoTokenizer.from_pretrained(model_dir())
    warmup = 2
    for step in range(warmup + a.steps):
        if step == warmup:
            start = time.perf_counter()
        if scratch:
            tok = tokenizer(names[step * a.batch:(step + 1) * a.batch], padding=True, truncation=True,
                            max_length=256, return_tensors="pt")
            t = text(tok["input_ids"], tok["attention_mask"])
        else:
            t = cached
        i = image_proj(image(pixels))
        loss = open_clip_losses()[0](F.normalize(i, dim=1), F.normalize(text_proj(t), dim=1), logit_scale.exp())
        loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            logit_scale.clamp_(0, math.log(100))
    secs = time.perf_counter() - start
    print(json.dumps({"bench": "clip_train", "impl": "pytorch-eager", "text": a.text, "batch": a.batch,
                      "steps": a.steps, "threads": torch.get_num_threads(),
                      "pairs_per_second": a.batch * a.steps / secs}))


if __name__ == "__main__":
    main()
