#!/usr/bin/python3
"""PyTorch side of tests/FeatureTransfer.Tests/FineTune/MlNetResNet18TorchTests.cs.

Usage: mlnet_resnet18_torch_steps.py MAPPING_DIR WORK_DIR

MAPPING_DIR holds benchmarks/pytorch/mlnet_resnet18_to_torch.py (ML.NET's ResNet-18 as a torchvision ResNet).
WORK_DIR/request.json (written by the test):
  model        the installed resnet18-mlnet .onnx
  count        images in WORK_DIR/inputs.bin (float32 [count, 3, 224, 224], RGB 0..255, tensorized by the C# side)
  forward      indices of the images whose features are compared
  classes      classes of the new head; head_weight [classes*512], head_bias [classes]: its initial values
  trainable    {onnx initializer name: learning-rate group} (what the C# engine trains; head.weight/head.bias = fc)
  momentum, weight_decay (coupled, on tensors of rank >= 2 only, as the ONNX optimizer graph does)
  steps        [{batch: [image indices], labels: [...], rates: [rate of group 0, group 1, ...]}]
Writes WORK_DIR/features.bin (float32 [len(forward), 512], the backbone output of those images, eval mode) and
WORK_DIR/result.json {losses: [...], trainable: [torch parameter names], layer4: [every layer4 parameter name]}.
BatchNorm: eval mode throughout (running statistics frozen; layer4's BN scale/bias train), as `ft finetune`'s default.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F


def main():
    mapping_dir, work = sys.argv[1], sys.argv[2]
    sys.path.insert(0, mapping_dir)
    from mlnet_resnet18_to_torch import build

    torch.set_num_threads(2)
    req = json.load(open(os.path.join(work, "request.json")))
    x = torch.from_numpy(np.fromfile(os.path.join(work, "inputs.bin"), dtype=np.float32).reshape(req["count"], 3, 224, 224))
    model, names = build(req["model"], classes=req["classes"])
    names = dict(names, **{"head.weight": "net.fc.weight", "head.bias": "net.fc.bias"})
    model.eval()

    with torch.no_grad():
        model.net.fc.weight.copy_(torch.tensor(req["head_weight"], dtype=torch.float32).reshape(req["classes"], -1))
        model.net.fc.bias.copy_(torch.tensor(req["head_bias"], dtype=torch.float32))
        features = model.features(x[req["forward"]])
    features.numpy().astype(np.float32).tofile(os.path.join(work, "features.bin"))

    params = dict(model.named_parameters())
    for p in params.values():
        p.requires_grad_(False)
    groups = {}
    trainable = []
    for onnx_name, group in req["trainable"].items():
        torch_name = names[onnx_name]
        p = params[torch_name]
        p.requires_grad_(True)
        trainable.append(torch_name)
        decay = p.dim() >= 2
        groups.setdefault((group, decay), []).append(p)
    opt = torch.optim.SGD([{"params": ps, "group": g, "weight_decay": req["weight_decay"] if d else 0.0}
                           for (g, d), ps in sorted(groups.items())], lr=0.0, momentum=req["momentum"])
    losses = []
    for s in req["steps"]:
        for pg in opt.param_groups:
            pg["lr"] = s["rates"][pg["group"]]
        logits = model(x[s["batch"]])
        loss = F.cross_entropy(logits, torch.tensor(s["labels"]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    json.dump({"losses": losses, "trainable": sorted(trainable),
               "layer4": sorted(n for n in params if n.startswith("net.layer4."))},
              open(os.path.join(work, "result.json"), "w"))


if __name__ == "__main__":
    main()
