#!/usr/bin/env python3
"""Oracle for module-path layer names (src/FeatureTransfer.Onnx/Inspection/ModulePaths.cs).

Usage: python3 graph_node_names.py ARCH OUT_DIR REPO_ROOT

Builds the torchvision model exactly as onnx-models/export_torchvision.py does (same seed, random weights), so its
weights equal those of the ONNX export the tests make, and writes to OUT_DIR:
  input.bin   float32 [1, 3, 224, 224], the input both sides run (seeded)
  names.json  {"names":   torchvision.models.feature_extraction.get_graph_node_names(model)[1] (eval mode),
               "values":  name -> the first 32 channel means over H x W of that node's output (or the first 32
                          values of a vector), from create_feature_extractor on input.bin,
               "folded":  conv name -> the BatchNorm right after it (torch.onnx.export folds the BN into the conv in
                          eval mode, so the export has the BN's output under the conv's node name),
               "removed": names with no tensor of their own in an export (the input, folded BatchNorms, Dropout,
                          Identity)}
"""
import json
import os
import sys

import torch
import torchvision
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names


def main(arch, out_dir, repo_root):
    sys.path.insert(0, os.path.join(repo_root, "onnx-models"))
    from export_torchvision import build  # the export's own constructor: same seed, same weights

    torch.set_num_threads(1)
    model = build(arch, None).eval()
    for m in model.modules():  # ResNet's ReLU(inplace=True) would overwrite the returned BatchNorm outputs
        if hasattr(m, "inplace"):
            m.inplace = False
    names = get_graph_node_names(model)[1]
    modules = dict(model.named_modules())

    def module_of(name):
        if name in modules:
            return modules[name]
        base, _, suffix = name.rpartition("_")  # a module's second call: relu_1
        return modules.get(base) if suffix.isdigit() else None

    folded, removed = {}, ["x"]
    for prev, name in zip(names, names[1:]):
        m, p = module_of(name), module_of(prev)
        if isinstance(m, torch.nn.BatchNorm2d) and isinstance(p, torch.nn.Conv2d):
            folded[prev] = name
    for name in names:
        m = module_of(name)
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.Dropout, torch.nn.Identity)):
            removed.append(name)

    torch.manual_seed(1)
    x = torch.randn(1, 3, 224, 224)
    wanted = [n for n in names if n != "x"]
    with torch.no_grad():
        out = create_feature_extractor(model, return_nodes=wanted)(x)
    values = {}
    for n in wanted:
        v = out[n]
        if v.dim() == 4:
            v = v.mean(dim=(2, 3))
        values[n] = [float(a) for a in v.reshape(-1)[:32]]

    os.makedirs(out_dir, exist_ok=True)
    x.numpy().astype("<f4").tofile(os.path.join(out_dir, "input.bin"))
    tmp = os.path.join(out_dir, "names.json.tmp")
    with open(tmp, "w") as f:
        json.dump({"names": names, "values": values, "folded": folded, "removed": removed}, f)
    os.replace(tmp, os.path.join(out_dir, "names.json"))


if __name__ == "__main__":
    main(*sys.argv[1:4])
