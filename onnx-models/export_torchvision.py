#!/usr/bin/env python3
"""Export torchvision backbones to ONNX for FeatureTransfer (`ft inspect`, `ft extract`).

Usage:
    python3 export_torchvision.py resnet18 mobilenet_v2 squeezenet1_1 vgg11 --out DIR [--opset 13]
        [--weights PATH_OR_DEFAULT] [--size 224]

Each model is exported in eval mode with a dynamic batch dimension (input `input` [batch,3,H,W],
output `output` [batch,1000]). Without --weights the networks are randomly initialized (weights=None):
fine for graph tests, useless for features. With `--weights DEFAULT` torchvision's pretrained weights are
used when they are already in the torch hub cache (this script never needs the network when they are);
with `--weights file.pth` a state_dict saved by the user is loaded (single architecture only).
"""
import argparse
import os
import sys

import torch
import torchvision


def build(arch, weights):
    ctor = getattr(torchvision.models, arch, None)
    if ctor is None:
        raise SystemExit(f"unknown torchvision architecture '{arch}'")
    if weights is None:
        torch.manual_seed(0)  # reproducible random weights
        return ctor(weights=None)
    if weights == "DEFAULT":
        return ctor(weights="DEFAULT")
    model = ctor(weights=None)
    model.load_state_dict(torch.load(weights, map_location="cpu"))
    return model


def write_preprocessing(path, size):
    """torchvision's ImageNet preprocessing in the model's metadata_props (the key FeatureTransfer reads), so every
    ft command knows it without options: RGB, x/255, ImageNet mean/std, resize size*256/224 then centre crop."""
    import json
    import onnx
    m = onnx.load(path)
    pre = {"height": size, "width": size, "resize": round(size * 256 / 224), "crop": "center", "channel_order": "RGB",
           "layout": "NCHW", "channels": 3, "scale": 1 / 255, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    del m.metadata_props[:]
    entry = m.metadata_props.add()
    entry.key, entry.value = "featuretransfer.preprocessing", json.dumps(pre)
    onnx.save(m, path)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("arch", nargs="+", help="torchvision.models names, e.g. resnet18 mobilenet_v2 squeezenet1_1 vgg11")
    p.add_argument("--out", required=True, help="output folder (files <arch>.onnx)")
    p.add_argument("--opset", type=int, default=13)
    p.add_argument("--weights", default=None, help="DEFAULT (torchvision pretrained, from the local cache) or a .pth state_dict")
    p.add_argument("--size", type=int, default=224, help="input height = width used for tracing")
    p.add_argument("--no-metadata", action="store_true", help="do not write torchvision's preprocessing into metadata_props")
    a = p.parse_args(argv)
    if a.weights not in (None, "DEFAULT") and len(a.arch) != 1:
        raise SystemExit("--weights FILE applies to a single architecture")
    os.makedirs(a.out, exist_ok=True)
    torch.set_num_threads(1)
    for arch in a.arch:
        model = build(arch, a.weights).eval()
        dummy = torch.zeros(1, 3, a.size, a.size)
        target = os.path.join(a.out, f"{arch}.onnx")
        tmp = target + ".tmp"
        with torch.no_grad():
            torch.onnx.export(model, dummy, tmp, opset_version=a.opset,
                              input_names=["input"], output_names=["output"],
                              dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                              do_constant_folding=True)
        if not a.no_metadata:
            write_preprocessing(tmp, a.size)
        os.replace(tmp, target)  # atomic: a half-written file never has the final name
        print(target)


if __name__ == "__main__":
    main(sys.argv[1:])
