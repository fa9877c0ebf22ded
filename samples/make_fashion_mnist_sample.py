#!/usr/bin/env python3
"""Writes the small Fashion-MNIST sample committed in samples/fashion-mnist (the embedded default data).

Source: Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist, MIT licence, Zalando Research).
Target task: classes 5-9 (sandal, shirt, sneaker, bag, ankle boot), the classes the source backbone never sees.
Deterministic: the first N images of each class in file order. Run: python3 samples/make_fashion_mnist_sample.py
"""
import gzip, os, struct, sys
from PIL import Image

SRC = "/usr/share/datasets/fashion-mnist"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fashion-mnist")
NAMES = {5: "sandal", 6: "shirt", 7: "sneaker", 8: "bag", 9: "ankle-boot"}
PER_CLASS = {"train": 40, "test": 20}

def read(prefix):
    with gzip.open(f"{SRC}/{prefix}-images-idx3-ubyte.gz") as f:
        _, n, rows, cols = struct.unpack(">IIII", f.read(16))
        images = f.read(n * rows * cols)
    with gzip.open(f"{SRC}/{prefix}-labels-idx1-ubyte.gz") as f:
        f.read(8)
        labels = f.read(n)
    return images, labels, rows, cols

for split, prefix in (("train", "train"), ("test", "t10k")):
    images, labels, rows, cols = read(prefix)
    counts = {c: 0 for c in NAMES}
    for i, c in enumerate(labels):
        if c not in NAMES or counts[c] >= PER_CLASS[split]:
            continue
        counts[c] += 1
        d = os.path.join(OUT, split, NAMES[c])
        os.makedirs(d, exist_ok=True)
        px = images[i * rows * cols:(i + 1) * rows * cols]
        Image.frombytes("L", (cols, rows), px).save(os.path.join(d, f"{prefix}-{i:05d}.png"), optimize=True)
    print(split, counts, file=sys.stderr)
