#!/usr/bin/python3
"""PyTorch CPU reference for the training-step benchmark (benchmarks/Training; Debian python3-torch 1.13 /
torchvision 0.14, weights=None, nothing downloaded).

  pytorch_train_step.py export OUT.onnx [--size 224]
      torchvision ResNet-18 (seed 0, 1000 classes), exported in eval mode with TrainingMode.PRESERVE and no constant
      folding: BatchNormalization nodes are kept (not fused into Conv) and initializers keep the PyTorch parameter
      names (BN values randomised so that the exporter does not merge equal tensors) (conv1.weight, layer4.0.bn1.weight, fc.bias, ...), so both sides train the same parameters.
  pytorch_train_step.py flops --mode a|b|c [--batch 32] [--size 224]
      FLOPs of one training step (Conv2d + Linear: forward, weight gradients, needed input gradients).
  pytorch_train_step.py step --mode a|b|c [--bn train|frozen] [--batch 32] [--threads 2] [--steps 5] [--warmup 1] [--size 224]
      times forward + cross-entropy + backward + SGD(momentum 0.9) update per batch of random images.
      a: fc only; b: layer4 + fc; c: all parameters. BatchNorm of the unfrozen part: --bn train = batch statistics and
      running averages updated (module.train()), --bn frozen = running statistics (module.eval()) with trainable
      weight/bias; frozen layers are always in eval mode with requires_grad False.
      Prints: mode=<m> bn=<bn> steps=<n> median_s=<s> min_s=<s> peak_mb=<max RSS>
"""
import argparse
import os
import resource
import statistics
import time

import torch
import torch.nn.functional as F
import torchvision

PREFIXES = {"a": ("fc.",), "b": ("layer4.", "fc."), "c": ("",)}


def build(size):
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None)
    # Distinct BatchNorm values: the exporter deduplicates equal initializers (fresh BN layers are all ones/zeros)
    # into Identity nodes, which would no longer be trainable initializers.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model


def export(a):
    model = build(a.size).eval()
    x = torch.randn(1, 3, a.size, a.size)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    torch.onnx.export(model, x, a.out, opset_version=13, do_constant_folding=False,
                      training=torch.onnx.TrainingMode.PRESERVE,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
    print(f"exported={a.out}")


def step(a):
    torch.set_num_threads(a.threads)
    model = build(a.size)
    prefixes = PREFIXES[a.mode]
    trainable = []
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith(prefixes))
        if p.requires_grad:
            trainable.append(p)
    model.eval()
    if a.bn == "train":
        for name, m in model.named_modules():
            if isinstance(m, torch.nn.BatchNorm2d) and (name + ".").startswith(prefixes):
                m.train()
    opt = torch.optim.SGD(trainable, lr=1e-3, momentum=0.9)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(a.batch, 3, a.size, a.size, generator=g)
    y = torch.randint(0, 1000, (a.batch,), generator=g)
    times = []
    for i in range(a.warmup + a.steps):
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if i >= a.warmup:
            times.append(time.perf_counter() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"mode={a.mode} bn={a.bn} steps={len(times)} median_s={statistics.median(times):.4f} "
          f"min_s={min(times):.4f} peak_mb={peak:.0f} threads={torch.get_num_threads()} loss={loss.item():.4f}")


def flops(a):
    """FLOPs of one training step of a mode, counted on Conv2d and Linear only (2 per multiply-add; BatchNorm, ReLU,
    pooling and the loss are memory-bound and left out, as usual): the forward of every layer, the weight gradient of
    every trained layer, and the input gradient of every layer whose input needs one (recorded in a real forward pass
    with the mode's requires_grad, so a frozen prefix costs no backward)."""
    model = build(a.size)
    prefixes = PREFIXES[a.mode]
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith(prefixes))
    model.eval()
    total = {"forward": 0, "weight_grad": 0, "input_grad": 0}

    def hook(m, inp, out):
        x = inp[0]
        if isinstance(m, torch.nn.Conv2d):
            macs = out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        else:
            macs = out.numel() * m.in_features
        total["forward"] += 2 * macs
        if m.weight.requires_grad:
            total["weight_grad"] += 2 * macs
        if x.requires_grad:
            total["input_grad"] += 2 * macs

    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            m.register_forward_hook(hook)
    model(torch.randn(a.batch, 3, a.size, a.size))
    step_flops = sum(total.values())
    print(f"mode={a.mode} batch={a.batch} step_gflop={step_flops / 1e9:.3f} forward_gflop={total['forward'] / 1e9:.3f} "
          f"weight_grad_gflop={total['weight_grad'] / 1e9:.3f} input_grad_gflop={total['input_grad'] / 1e9:.3f}")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export")
    e.add_argument("out")
    e.add_argument("--size", type=int, default=224)
    s = sub.add_parser("step")
    s.add_argument("--mode", choices=list(PREFIXES), required=True)
    s.add_argument("--bn", choices=["train", "frozen"], default="train")
    s.add_argument("--batch", type=int, default=32)
    s.add_argument("--threads", type=int, default=2)
    s.add_argument("--steps", type=int, default=5)
    s.add_argument("--warmup", type=int, default=1)
    s.add_argument("--size", type=int, default=224)
    f = sub.add_parser("flops")
    f.add_argument("--mode", choices=list(PREFIXES), required=True)
    f.add_argument("--batch", type=int, default=32)
    f.add_argument("--size", type=int, default=224)
    a = ap.parse_args()
    {"export": export, "step": step, "flops": flops}[a.cmd](a)


if __name__ == "__main__":
    main()
