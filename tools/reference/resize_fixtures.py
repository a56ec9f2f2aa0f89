"""Reference resamples for contra's image resizing, from PyTorch: `F.interpolate(...,
mode="bilinear", antialias=True)` (torchvision's tensor Resize) on the whole image or on a
cropped box (torchvision's resized_crop crops, then resizes), and torchvision's
Resize(size) + CenterCrop(size) written from its definition (shorter side to `size`, the longer
`int(size * long / short)`, crop offsets `int(round((h - size) / 2))`). Writes
crates/contra/tests/fixtures/resize.json.

    ~/.venvs/ref/bin/python tools/reference/resize_fixtures.py
"""
import json
import pathlib

import torch
import torch.nn.functional as F

OUT = pathlib.Path(__file__).resolve().parents[2] / "crates" / "contra" / "tests" / "fixtures"


def interp(x, h, w):
    return F.interpolate(x[None], size=(h, w), mode="bilinear", antialias=True,
                         align_corners=False)[0]


def shorter_and_crop(x, size):
    _, h, w = x.shape
    if h <= w:
        rh, rw = size, int(size * w / h)
    else:
        rh, rw = int(size * h / w), size
    r = x if (rh, rw) == (h, w) else interp(x, rh, rw)
    top, left = int(round((rh - size) / 2.0)), int(round((rw - size) / 2.0))
    return r[:, top:top + size, left:left + size]


def main():
    g = torch.Generator().manual_seed(16)
    cases = []

    def image(c, h, w):
        return torch.rand(c, h, w, generator=g)

    for name, (c, h, w), box, (oh, ow) in [
        ("shrink_both", (3, 37, 50), None, (13, 17)),
        ("shrink_4x", (1, 64, 64), None, (16, 16)),
        ("crop_then_shrink", (1, 40, 45), (5, 7, 20, 30), (9, 11)),
        ("shrink_one_grow_other", (2, 10, 40), None, (20, 8)),
    ]:
        x = image(c, h, w)
        if box is None:
            y = interp(x, oh, ow)
            box = (0, 0, h, w)
        else:
            t, l, bh, bw = box
            y = interp(x[:, t:t + bh, l:l + bw], oh, ow)
        cases.append({"name": name, "shape": [c, h, w], "image": x.flatten().tolist(),
                      "box": list(box), "out": [oh, ow], "expected": y.flatten().tolist()})
    fits = []
    for (c, h, w), size in [((3, 30, 50), 16), ((1, 45, 20), 8), ((3, 33, 33), 33), ((1, 9, 12), 16)]:
        x = image(c, h, w)
        fits.append({"shape": [c, h, w], "size": size, "image": x.flatten().tolist(),
                     "expected": shorter_and_crop(x, size).flatten().tolist()})
    path = OUT / "resize.json"
    path.write_text(json.dumps({"torch": torch.__version__, "resample": cases, "fit": fits}))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
