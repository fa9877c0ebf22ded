#!/usr/bin/python3
"""ML.NET's ImageNet ResNet-18 (NuGet Microsoft.ML.DnnImageFeaturizer.ResNet18 0.24.0, a CNTK 2.6 export) as a
torchvision ResNet carrying the same weights: the PyTorch oracle of issue 17 item 4.

Reads the ONNX file(s) with `onnx` (no ONNX Runtime needed):
  * the model `ft models fetch resnet18-mlnet` installs (ResNetPreprocess.onnx chained before ResNet18.onnx), or
  * the package's two files: --preprocess ResNetPreprocess.onnx and the backbone ResNet18.onnx, or
  * the backbone alone (then the input must already be BGR minus the mean image).

What it reproduces exactly:
  * the preprocessing graph: RGB planes 0..255 -> BGR (Split + Concat) minus the 3x224x224 mean image;
  * CNTK's padding: pads are read per Conv/MaxPool; where they are asymmetric (the stem conv [3,3,2,2], the max pool
    [1,1,0,0], the strided 3x3 convs [1,1,0,0]; ONNX order top, left, bottom, right) the module applies F.pad with
    those pads (-inf for the max pool) and convolves without padding. (At 224 px, the only size since the mean image
    is 224x224, torchvision's symmetric padding with the begin pads gives bit-identical features: CNTK's smaller end
    pad is never reached by a window. Checked once; the explicit F.pad keeps the mapping literal.);
  * BatchNormalization eps and momentum from the graph (PyTorch momentum = 1 - ONNX momentum);
  * the block structure found in the graph: this "ResNet-18" has [2, 2, 2, 3] basic blocks (19 convolutions
    besides the three 1x1 shortcuts), one more block in the last stage than torchvision's resnet18 ([2, 2, 2, 2]),
    so the network is torchvision's ResNet class (BasicBlock) with the layer counts read from the graph;
  * the 7x7 average pool with count_include_pad=0 over the 7x7 map = torchvision's AdaptiveAvgPool2d(1) at 224 px.
The fc layer is replaced: nn.Linear(512, classes), or the 512 pooled features (fc = Identity) when classes is None.

  mlnet_resnet18_to_torch.py MODEL.onnx [--preprocess ResNetPreprocess.onnx] [--check N]
      builds the model, prints the layer counts, pads and BN settings; --check N compares the mapped network
      against a direct re-implementation of the ONNX graph node by node (torch functional ops) on N random images.

Library use: `build(path, classes=None, preprocess=None)` -> (MlNetResNet, names), names maps every ONNX
initializer name to the PyTorch parameter/buffer name it went to (e.g. Parameter23 -> net.layer4.2.conv1.weight).
"""
import argparse
import math
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import numpy_helper
from torchvision.models.resnet import BasicBlock, ResNet


class PaddedConv2d(nn.Conv2d):
    """nn.Conv2d whose padding is done by F.pad with ONNX pads (top, left, bottom, right), so CNTK's asymmetric
    padding is exact. Parameters keep nn.Conv2d's names (weight, bias)."""

    def __init__(self, *args, onnx_pads, **kwargs):
        super().__init__(*args, padding=0, **kwargs)
        t, l, b, r = onnx_pads
        self.pad = (l, r, t, b)  # F.pad order: last dim first

    def forward(self, x):
        return super().forward(F.pad(x, self.pad))

    def extra_repr(self):
        return super().extra_repr() + f", F.pad={self.pad}"


class PaddedMaxPool2d(nn.MaxPool2d):
    """nn.MaxPool2d padded by F.pad with -inf (ONNX MaxPool's padding never wins the max)."""

    def __init__(self, kernel_size, stride, onnx_pads):
        super().__init__(kernel_size, stride, padding=0)
        t, l, b, r = onnx_pads
        self.pad = (l, r, t, b)

    def forward(self, x):
        return super().forward(F.pad(x, self.pad, value=-math.inf))

    def extra_repr(self):
        return super().extra_repr() + f", F.pad={self.pad}"


class MlNetResNet(nn.Module):
    """ML.NET's preprocessing (RGB 0..255 -> BGR minus the mean image) followed by the ResNet."""

    def __init__(self, net, mean_image, bgr):
        super().__init__()
        self.net = net
        self.bgr = bgr
        self.register_buffer("mean_image", mean_image if mean_image is not None else torch.zeros(0))

    def preprocess(self, x):
        if self.bgr:
            x = x[:, [2, 1, 0]]
        if self.mean_image.numel():
            x = x - self.mean_image
        return x

    def features(self, x):
        """The backbone's output Pooling395_Output_0 flattened: [N, 512]."""
        n = self.net
        x = n.maxpool(n.relu(n.bn1(n.conv1(self.preprocess(x)))))
        x = n.layer4(n.layer3(n.layer2(n.layer1(x))))
        return torch.flatten(n.avgpool(x), 1)

    def forward(self, x):
        return self.net.fc(self.features(x))


class _Graph:
    def __init__(self, models):
        self.nodes, self.inits = [], {}
        for m in models:
            self.nodes.extend(m.graph.node)
            for t in m.graph.initializer:
                self.inits[t.name] = numpy_helper.to_array(t)
            for n in m.graph.node:
                if n.op_type == "Constant":
                    self.inits[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
        self.producer = {o: n for n in self.nodes for o in n.output}

    def attr(self, node, name, default=None):
        for a in node.attribute:
            if a.name == name:
                return onnx.helper.get_attribute_value(a)
        return default

    def prod(self, tensor, op):
        n = self.producer.get(tensor)
        if n is None or n.op_type != op:
            raise ValueError(f"expected {op} producing {tensor}, found {n.op_type if n else 'a graph input'}")
        return n


def _conv(g, node):
    w = g.inits[node.input[1]]
    pads = list(g.attr(node, "pads", [0, 0, 0, 0]))
    stride = tuple(g.attr(node, "strides", [1, 1]))
    assert g.attr(node, "group", 1) == 1 and tuple(g.attr(node, "dilations", [1, 1])) == (1, 1)
    out_c, in_c, kh, kw = w.shape
    bias = len(node.input) > 2
    if pads[0] == pads[2] and pads[1] == pads[3]:
        conv = nn.Conv2d(in_c, out_c, (kh, kw), stride=stride, padding=(pads[0], pads[1]), bias=bias)
    else:
        conv = PaddedConv2d(in_c, out_c, (kh, kw), stride=stride, bias=bias, onnx_pads=pads)
    return conv, pads


def _bn(g, node):
    c = g.inits[node.input[1]].shape[0]
    assert g.attr(node, "spatial", 1) == 1
    eps = g.attr(node, "epsilon", 1e-5)
    momentum = 1.0 - g.attr(node, "momentum", 0.9)  # ONNX: running*m + batch*(1-m); PyTorch: running*(1-m) + batch*m
    return nn.BatchNorm2d(c, eps=eps, momentum=momentum)


def _blocks(g, start):
    """Basic blocks from tensor `start` in order: (conv1, bn1, conv2, bn2, (convd, bnd) | None, output)."""
    adds = [n for n in g.nodes if n.op_type == "Add"]
    blocks, x = [], start
    while True:
        found = None
        for add in adds:
            for main, short in ((add.input[0], add.input[1]), (add.input[1], add.input[0])):
                try:
                    bn2 = g.prod(main, "BatchNormalization")
                    conv2 = g.prod(bn2.input[0], "Conv")
                    relu = g.prod(conv2.input[0], "Relu")
                    bn1 = g.prod(relu.input[0], "BatchNormalization")
                    conv1 = g.prod(bn1.input[0], "Conv")
                except ValueError:
                    continue
                if conv1.input[0] != x:
                    continue
                down = None
                if short != x:
                    bnd = g.prod(short, "BatchNormalization")
                    convd = g.prod(bnd.input[0], "Conv")
                    assert convd.input[0] == x, "shortcut does not start at the block input"
                    down = (convd, bnd)
                found = (conv1, bn1, conv2, bn2, down, add)
                break
            if found:
                break
        if not found:
            return blocks, x
        out = next(n for n in g.nodes if n.op_type == "Relu" and n.input[0] == found[5].output[0])
        blocks.append(found[:5] + (out.output[0],))
        x = out.output[0]


def build(path, classes=None, preprocess=None):
    """Returns (MlNetResNet in eval mode, {onnx initializer name: torch state_dict name})."""
    models = ([onnx.load(preprocess)] if preprocess else []) + [onnx.load(path)]
    g = _Graph(models)
    convs = [n for n in g.nodes if n.op_type == "Conv"]
    stem = convs[0]
    # Preprocessing: Sub(BGR, MeanImage) (and Split/Concat reversing the planes) in front of the stem, if present.
    mean, bgr = None, False
    sub = g.producer.get(stem.input[0])
    if sub is None and preprocess:
        sub = next(n for n in g.nodes if n.op_type == "Sub")
    if sub is not None and sub.op_type == "Sub":
        mean = torch.from_numpy(g.inits[sub.input[1]].astype(np.float32).copy())
        concat = g.producer.get(sub.input[0])
        if concat is not None and concat.op_type == "Concat":
            split = g.producer[concat.input[0]]
            assert split.op_type == "Split"
            bgr = list(concat.input) == list(reversed(split.output))
            assert bgr or list(concat.input) == list(split.output)

    bn1 = next(n for n in g.nodes if n.op_type == "BatchNormalization" and n.input[0] == stem.output[0])
    relu = next(n for n in g.nodes if n.op_type == "Relu" and n.input[0] == bn1.output[0])
    pool = next(n for n in g.nodes if n.op_type == "MaxPool" and n.input[0] == relu.output[0])
    blocks, last = _blocks(g, pool.output[0])
    avg = next(n for n in g.nodes if n.op_type == "AveragePool" and n.input[0] == last)
    stages = []
    for i, b in enumerate(blocks):
        if i == 0 or b[4] is not None:
            stages.append([])
        stages[-1].append(b)
    layers = [len(s) for s in stages]
    assert len(layers) == 4, f"expected 4 stages, found {layers}"

    net = ResNet(BasicBlock, layers, num_classes=1000)
    names = {}

    def put(module, prefix, conv_node=None, bn_node=None):
        if conv_node is not None:
            module.weight.data = torch.from_numpy(g.inits[conv_node.input[1]].copy())
            names[conv_node.input[1]] = prefix + ".weight"
            if len(conv_node.input) > 2:
                module.bias.data = torch.from_numpy(g.inits[conv_node.input[2]].copy())
                names[conv_node.input[2]] = prefix + ".bias"
        if bn_node is not None:
            for k, attr in zip(bn_node.input[1:], ("weight", "bias", "running_mean", "running_var")):
                getattr(module, attr).data = torch.from_numpy(g.inits[k].astype(np.float32).copy())
                names[k] = f"{prefix}.{attr}"

    def conv_module(node, prefix):
        conv, _ = _conv(g, node)
        put(conv, "net." + prefix, conv_node=node)
        return conv

    def bn_module(node, prefix):
        bn = _bn(g, node)
        put(bn, "net." + prefix, bn_node=node)
        return bn

    net.conv1 = conv_module(stem, "conv1")
    net.bn1 = bn_module(bn1, "bn1")
    pads = list(g.attr(pool, "pads", [0, 0, 0, 0]))
    k, s = tuple(g.attr(pool, "kernel_shape")), tuple(g.attr(pool, "strides"))
    net.maxpool = PaddedMaxPool2d(k, s, pads) if (pads[0], pads[1]) != (pads[2], pads[3]) else nn.MaxPool2d(k, s, (pads[0], pads[1]))
    for si, stage in enumerate(stages):
        layer = getattr(net, f"layer{si + 1}")
        for bi, (c1, b1, c2, b2, down, _) in enumerate(stage):
            blk, p = layer[bi], f"layer{si + 1}.{bi}"
            blk.conv1, blk.bn1 = conv_module(c1, p + ".conv1"), bn_module(b1, p + ".bn1")
            blk.conv2, blk.bn2 = conv_module(c2, p + ".conv2"), bn_module(b2, p + ".bn2")
            if down is not None:
                blk.downsample = nn.Sequential(conv_module(down[0], p + ".downsample.0"), bn_module(down[1], p + ".downsample.1"))
            else:
                assert blk.downsample is None
    assert tuple(g.attr(avg, "kernel_shape")) == (7, 7) and g.attr(avg, "count_include_pad", 0) == 0
    net.fc = nn.Identity() if classes is None else nn.Linear(512, classes)
    model = MlNetResNet(net, mean, bgr).eval()
    # Every float parameter of the ONNX graph must have found its place.
    used = {n for n in g.inits if g.inits[n].dtype == np.float32 and n in {i for node in g.nodes if node.op_type in ("Conv", "BatchNormalization") for i in node.input}}
    missing = used - set(names)
    assert not missing, f"unmapped initializers: {sorted(missing)[:5]}"
    return model, names


def _reference_forward(path, preprocess, x):
    """The ONNX graph evaluated node by node with torch functional ops (symmetric ONNX pads by F.pad), as a check."""
    models = ([onnx.load(preprocess)] if preprocess else []) + [onnx.load(path)]
    g = _Graph(models)
    inputs = [[i.name for i in m.graph.input if i.name not in g.inits][0] for m in models]
    env = {inputs[0]: x}
    if preprocess:  # the backbone's input is the preprocessing graph's output
        g.nodes.insert(len(models[0].graph.node), onnx.helper.make_node("Identity", [models[0].graph.output[0].name], [inputs[1]]))
    t = lambda name: env[name] if name in env else torch.from_numpy(g.inits[name].astype(np.float32).copy())
    for n in g.nodes:
        i = n.input
        if n.op_type == "Split":
            outs = torch.split(t(i[0]), 1, dim=g.attr(n, "axis"))
            env.update(zip(n.output, outs))
            continue
        if n.op_type == "Concat":
            y = torch.cat([t(v) for v in i], dim=g.attr(n, "axis"))
        elif n.op_type == "Sub":
            y = t(i[0]) - t(i[1])
        elif n.op_type == "Add":
            y = t(i[0]) + t(i[1])
        elif n.op_type == "Identity":
            y = t(i[0])
        elif n.op_type == "Relu":
            y = F.relu(t(i[0]))
        elif n.op_type == "Conv":
            p = g.attr(n, "pads")
            y = F.conv2d(F.pad(t(i[0]), (p[1], p[3], p[0], p[2])), t(i[1]), t(i[2]) if len(i) > 2 else None, stride=g.attr(n, "strides"))
        elif n.op_type == "BatchNormalization":
            y = F.batch_norm(t(i[0]), t(i[3]), t(i[4]), t(i[1]), t(i[2]), False, 0.0, g.attr(n, "epsilon"))
        elif n.op_type == "MaxPool":
            p = g.attr(n, "pads")
            y = F.max_pool2d(F.pad(t(i[0]), (p[1], p[3], p[0], p[2]), value=-math.inf), g.attr(n, "kernel_shape"), g.attr(n, "strides"))
        elif n.op_type == "AveragePool":
            y = F.avg_pool2d(t(i[0]), g.attr(n, "kernel_shape"), g.attr(n, "strides"))
        elif n.op_type == "Constant":
            continue
        else:
            raise ValueError(f"op {n.op_type} not handled by the reference")
        env[n.output[0]] = y
    return env[n.output[0]].flatten(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--preprocess")
    ap.add_argument("--check", type=int, default=0)
    a = ap.parse_args()
    model, names = build(a.model, preprocess=a.preprocess)
    net = model.net
    print("layers", [len(getattr(net, f"layer{i}")) for i in range(1, 5)], "bgr", model.bgr,
          "mean image", tuple(model.mean_image.shape), "initializers mapped", len(names))
    for name, m in net.named_modules():
        if isinstance(m, (PaddedConv2d, PaddedMaxPool2d)):
            print(f"  {name}: asymmetric F.pad {m.pad}")
    bn = net.bn1
    print(f"  BatchNorm eps {bn.eps:.9g} momentum (PyTorch) {bn.momentum:.9g}")
    if a.check:
        torch.manual_seed(0)
        x = torch.rand(a.check, 3, 224, 224) * 255
        with torch.no_grad():
            f, r = model.features(x), _reference_forward(a.model, a.preprocess, x)
        print(f"  check on {a.check} random images: max|diff| {float((f - r).abs().max()):.3g}, max|feature| {float(r.abs().max()):.4g}")


if __name__ == "__main__":
    sys.exit(main())
