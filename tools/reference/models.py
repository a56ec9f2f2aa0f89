"""contra's networks in PyTorch, for the references and the benchmarks' PyTorch side (no
torchvision needed)."""
import torch.nn as nn
import torch.nn.functional as F


class SmallCnn(nn.Module):
    def __init__(self, cin=1, widths=(32, 64, 128, 256)):
        super().__init__()
        blocks = []
        for w in widths:
            blocks.append(nn.Sequential(nn.Conv2d(cin, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU()))
            cin = w
        self.blocks = nn.ModuleList(blocks)
        self.out_dim = widths[-1]

    def forward(self, x):
        for i, b in enumerate(self.blocks):
            x = b(x)
            if i < len(self.blocks) - 1 and x.shape[-1] >= 2 and x.shape[-2] >= 2:
                x = F.max_pool2d(x, 2)
        return x.mean(dim=(2, 3))


def head(din, hidden=512, out=128):
    return nn.Sequential(nn.Linear(din, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, out))
