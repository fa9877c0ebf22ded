#!/usr/bin/python3
"""Small fixture for BatchNormalization in training mode (tests/FeatureTransfer.Tests/Gradients/BatchNormTrainingTests.cs).

Usage: bn_train_reference.py OUT_DIR   (writes bn_small.onnx and bn_train_reference.json; both are committed)

A Conv-BN-ReLU-Conv(stride 2)-BN-ReLU-GlobalAveragePool-Linear net (seed 0, BN values randomised so that the
exporter keeps every initializer), exported in eval mode with TrainingMode.PRESERVE and no constant folding (the
BatchNormalization nodes stay, initializer names are the PyTorch names). Then one PyTorch train-mode step on a fixed
batch: the mean softmax cross-entropy, every parameter gradient (autograd) and the BN running mean/variance after
the forward pass (momentum 0.1, unbiased batch variance), written as JSON lists.
Needs Debian's python3-torch (CPU); nothing is downloaded.
"""
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.bn2 = nn.BatchNorm2d(6)
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    net = Net()
    with torch.no_grad():
        for m in (net.bn1, net.bn2):
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.2, 0.2)
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    net.eval()
    x = torch.randn(4, 3, 6, 6)
    labels = torch.tensor([0, 2, 1, 2])
    torch.onnx.export(net, x, os.path.join(out, "bn_small.onnx"), opset_version=13, do_constant_folding=False,
                      training=torch.onnx.TrainingMode.PRESERVE, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
    net.train()
    loss = F.cross_entropy(net(x), labels)
    loss.backward()
    ref = {
        "input": x.flatten().tolist(), "input_shape": list(x.shape), "labels": labels.tolist(), "loss": loss.item(),
        "grads": {n: p.grad.flatten().tolist() for n, p in net.named_parameters()},
        "running": {f"{b}.{s}": getattr(getattr(net, b), s).flatten().tolist()
                    for b in ("bn1", "bn2") for s in ("running_mean", "running_var")},
    }
    with open(os.path.join(out, "bn_train_reference.json"), "w") as f:
        json.dump(ref, f)


if __name__ == "__main__":
    main()
