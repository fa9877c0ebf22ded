#!/usr/bin/python3
"""Reference gradients for the whole-network gradient check (tests/FeatureTransfer.Tests/Gradients/TorchReferenceTests.cs).

Usage: torch_reference.py {resnet18|mobilenet_v2} OUT_DIR [SIZE]

Builds the torchvision model (weights=None, seed 0), fills the BatchNorm running statistics with a few
train-mode passes, fuses Conv+BN in eval mode (torch.fx), exports it to ONNX (opset 14, no constant folding, so
initializer names are the PyTorch parameter names), and writes the mean softmax cross-entropy gradient of every
parameter for a fixed random batch:
  OUT_DIR/model.onnx, OUT_DIR/data.bin (float32 little-endian), OUT_DIR/index.json {name: [offset, shape]}.
Needs Debian's python3-torch and python3-torchvision (CPU); nothing is downloaded.
"""
import json
import os
import sys

import torch
import torch.nn.functional as F
import torchvision
from torch.fx.experimental.optimization import fuse


def main():
    arch, out = sys.argv[1], sys.argv[2]
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)(weights=None, num_classes=10)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average over the calibration passes
    model.train()
    with torch.no_grad():
        for _ in range(4):
            model(torch.randn(8, 3, size, size))
    model.eval()
    fused = fuse(model)
    x = torch.randn(2, 3, size, size)
    labels = torch.tensor([3, 7])
    torch.onnx.export(fused, x, os.path.join(out, "model.onnx"), opset_version=14, do_constant_folding=False,
                      input_names=["input"], output_names=["logits"], dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
    params = dict(fused.named_parameters())
    for p in params.values():
        p.grad = None
    loss = F.cross_entropy(fused(x), labels)
    loss.backward()
    index, chunks, offset = {}, [], 0
    def add(name, t):
        nonlocal offset
        a = t.detach().contiguous().float().numpy().ravel()
        index[name] = [offset, list(t.shape)]
        chunks.append(a.tobytes())
        offset += a.size
    add("__input__", x)
    add("__labels__", labels.float())
    add("__loss__", loss.reshape(1))
    for name, p in params.items():
        add(name, p.grad)
    with open(os.path.join(out, "data.bin"), "wb") as f:
        for c in chunks:
            f.write(c)
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(index, f)


if __name__ == "__main__":
    main()
