#!/usr/bin/python3
"""`ft finetune`'s default recipe written in PyTorch 1.13, on ML.NET's ResNet-18 mapped by mlnet_resnet18_to_torch.py:
the PyTorch loop of benchmarks/pytorch/side_by_side.sh (issue 17 item 4).

  finetune_torch.py --model resnet18-mlnet.onnx --train H/train --val H/val [--seed 0] [--threads 2] [--json OUT.json]

Same recipe as FineTuner.Run with FineTuneOptions' defaults (src/FeatureTransfer/FineTune/FineTuneOptions.cs):
  * images: class folders (classes sorted), EXIF orientation applied, Resize(224) of the shorter side (PIL, antialiased)
    + CenterCrop(224), RGB 0..255; the model subtracts ML.NET's mean image itself (as the installed ONNX does);
  * holdout: stratified, round(0.1 * n) images of each class (at least 1 when it has two), drawn with the seed
    (the same rule as FineTuneData.Split; the draw itself differs: numpy's generator instead of .NET's Random);
  * new head: Linear(512, classes) with PyTorch's default init (the distribution HeadSurgery uses);
  * stage 1, head only, 30 epochs on bottleneck features computed once per image; stage 2, the last stage
    (layer4, 7 convolutions with their BN scale/bias, exactly what HeadSurgery.LastStage picks) + head, 10 epochs,
    flip + crop augmentation (Augmenter: random resized crop of the 224x224 tensor, area 0.35-1, aspect 3/4-4/3,
    bilinear back to 224; horizontal flip p 0.5);
  * batch 32 (the remainder of an epoch dropped), SGD momentum 0.9, weight decay 1e-4 on weights of rank >= 2,
    head lr 0.01 and base lr 0.001, cosine schedule per stage, 1 warm-up epoch in stage 2; BatchNorm frozen (eval mode);
  * per epoch: holdout loss/accuracy; best checkpoint = highest holdout accuracy (ties: lower loss) over both stages;
    early stop after 5 epochs without improvement; the divergence guard (smoothed loss rising 8 steps to 1.5x its
    minimum, or non-finite: restore the last good weights, reset momentum, halve the rate; stop after 3 halvings);
  * val scored once with the best checkpoint.
Prints one line per epoch and `val accuracy X`; --json writes {val_accuracy, best_holdout_accuracy, best_epoch, curve, seconds}.
"""
import argparse
import copy
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torchvision import transforms

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mlnet_resnet18_to_torch import build  # noqa: E402

EXTENSIONS = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp"}


def load_folder(root, classes=None):
    classes = classes or sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    items = []
    for ci, c in enumerate(classes):
        d = os.path.join(root, c)
        for f in sorted(os.listdir(d)):
            if os.path.splitext(f)[1].lower() in EXTENSIONS:
                items.append((os.path.join(d, f), ci))
    # Rows ordered by id (the relative path, ordinal), as DatasetLoader orders them.
    items.sort(key=lambda it: os.path.relpath(it[0], root).encode())
    return items, classes


class Decode(torch.utils.data.Dataset):
    def __init__(self, items):
        self.items = items
        self.t = transforms.Compose([transforms.Resize(224), transforms.CenterCrop(224), transforms.PILToTensor()])

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        path, label = self.items[i]
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
            return self.t(im).float(), label


def tensorize(items, threads):
    loader = torch.utils.data.DataLoader(Decode(items), batch_size=64, num_workers=threads)
    xs, ys = zip(*loader)
    return torch.cat(xs), torch.cat(ys)


def split(y, fraction, seed):
    rng = np.random.RandomState(seed)
    hold = []
    for c in sorted(set(y.tolist())):
        idx = np.flatnonzero(y.numpy() == c)
        idx = idx[rng.permutation(len(idx))]
        h = max(1, round(fraction * len(idx))) if len(idx) >= 2 else 0
        hold.extend(idx[:h].tolist())
    mask = np.zeros(len(y), bool)
    mask[hold] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


class DivergenceGuard:
    """DivergenceGuard.cs: EMA (alpha 0.2) of the loss rising for `steps` steps to >= 1.5x its minimum, or non-finite."""

    def __init__(self, steps):
        self.steps, self.ema, self.min, self.rising = steps, math.nan, math.inf, 0

    def diverged(self, loss):
        if not math.isfinite(loss):
            return f"the loss became {loss}"
        prev = self.ema
        self.ema = loss if math.isnan(self.ema) else 0.2 * loss + 0.8 * self.ema
        self.min = min(self.min, self.ema)
        self.rising = self.rising + 1 if self.ema > prev else 0
        if self.rising >= self.steps and self.ema >= 1.5 * self.min:
            return f"the smoothed loss rose for {self.rising} steps, from {self.min:.3f} to {self.ema:.3f}"
        return None

    def reset(self):
        self.ema, self.rising = math.nan, 0


def augment(x, gen):
    """Augmenter.Apply on a batch of [3, 224, 224] RGB tensors: crop then flip, per sample."""
    out = torch.empty_like(x)
    _, _, h, w = x.shape
    for k in range(x.shape[0]):
        r = torch.rand(5, generator=gen).tolist()
        area = h * w * (0.35 + 0.65 * r[0])
        aspect = math.exp(math.log(3 / 4) + r[1] * (math.log(4 / 3) - math.log(3 / 4)))
        cw = min(max(round(math.sqrt(area * aspect)), 1), w)
        ch = min(max(round(math.sqrt(area / aspect)), 1), h)
        x0, y0 = int(r[2] * (w - cw + 1)), int(r[3] * (h - ch + 1))
        s = F.interpolate(x[k:k + 1, :, y0:y0 + ch, x0:x0 + cw], size=(h, w), mode="bilinear", align_corners=False)
        out[k] = s[0].flip(-1) if r[4] < 0.5 else s[0]
    return out


class Best:
    def __init__(self):
        self.acc, self.loss, self.epoch, self.state = -1.0, math.inf, 0, None


def evaluate(fn, x, y):
    with torch.no_grad():
        logits = torch.cat([fn(x[i:i + 64]) for i in range(0, len(x), 64)])
        return F.cross_entropy(logits, y).item(), (logits.argmax(1) == y).float().mean().item()


def train_stage(stage, params, universe, forward, train, holdout, epochs, warmup_epochs, aug, a, best, curve):
    """StageTrainer.Train (a FineTuner stage): trains `params`; checkpoints hold every tensor of `universe` (all that any stage trains),
    so restoring the best one also undoes a stage that did not improve. Ends with the best checkpoint restored."""
    (xt, yt), (xh, yh) = train, holdout
    head = {n for n in params if n.startswith("net.fc.")}
    groups = []
    for is_head in (True, False):
        for decay in (True, False):
            ps = [p for n, p in params.items() if (n in head) == is_head and (p.dim() >= 2) == decay]
            if ps:
                groups.append({"params": ps, "head": is_head, "weight_decay": a.weight_decay if decay else 0.0})
    opt = torch.optim.SGD(groups, lr=0.0, momentum=0.9)
    b = min(a.batch, len(xt))
    steps = max(1, len(xt) // b)
    total, warmup = steps * epochs, round(warmup_epochs * steps)
    gen = torch.Generator().manual_seed(a.seed * 1000 + len(curve))
    guard = DivergenceGuard(8)
    snapshot = lambda: {n: p.detach().clone() for n, p in universe.items()}
    last_good, rate_scale, stage_step, since_best = snapshot(), 1.0, 0, 0
    for epoch in range(1, epochs + 1):
        clock = time.time()
        order = torch.randperm(len(xt), generator=gen)
        loss_sum, correct, counted, lr = 0.0, 0, 0, 0.0
        for s in range(steps):
            idx = order[s * b:(s + 1) * b]
            xb, yb = xt[idx], yt[idx]
            if aug:
                xb = augment(xb, gen)
            stage_step += 1
            factor = 0.5 * (1 + math.cos(math.pi * (stage_step - 1) / max(1, total)))
            factor *= min(1.0, stage_step / warmup) if warmup > 0 else 1.0
            factor *= rate_scale
            for g in opt.param_groups:
                g["lr"] = a.lr * factor * (1.0 if g["head"] else a.base_lr_factor)
            lr = a.lr * factor
            logits = forward(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            why = guard.diverged(loss.item())
            if why:
                with torch.no_grad():
                    for n, p in universe.items():
                        p.copy_(last_good[n])
                opt.state.clear()
                guard.reset()
                rate_scale /= 2
                if rate_scale < 1 / 8:
                    print(f"diverged again ({why}) after three rate halvings: stopping the {stage} stage", flush=True)
                    return
                print(f"divergence: {why}; restored the last good weights and halved the learning rate", flush=True)
                continue
            loss_sum += loss.item()
            counted += 1
            correct += (logits.argmax(1) == yb).sum().item()
        h_loss, h_acc = evaluate(forward, xh, yh)
        row = {"epoch": len(curve) + 1, "stage": stage, "train_loss": loss_sum / max(1, counted),
               "train_acc": correct / max(1, counted * b), "holdout_loss": h_loss, "holdout_acc": h_acc,
               "lr": lr, "seconds": time.time() - clock}
        curve.append(row)
        print(f"epoch {row['epoch']} [{stage}]: train loss {row['train_loss']:.4f} acc {row['train_acc']:.3f} | "
              f"holdout loss {h_loss:.4f} acc {h_acc:.3f} | lr {lr:.3g} | {row['seconds']:.1f} s", flush=True)
        if counted > 0 and math.isfinite(h_loss):
            last_good = snapshot()
        if h_acc > best.acc or (h_acc == best.acc and h_loss < best.loss):
            best.acc, best.loss, best.epoch, best.state, since_best = h_acc, h_loss, row["epoch"], snapshot(), 0
        else:
            since_best += 1
            if since_best >= a.patience:
                print(f"early stop: no holdout improvement for {a.patience} epochs", flush=True)
                break
    restore(universe, best.state)


def restore(universe, state):
    with torch.no_grad():
        for n, p in universe.items():
            p.copy_(state[n])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--train", required=True)
    ap.add_argument("--val", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--head-epochs", type=int, default=30)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--base-lr-factor", type=float, default=0.1)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--holdout", type=float, default=0.1)
    ap.add_argument("--patience", type=int, default=5)
    ap.add_argument("--json")
    a = ap.parse_args()
    start = time.time()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    items, classes = load_folder(a.train)
    x, y = tensorize(items, a.threads)
    tr, ho = split(y, a.holdout, a.seed)
    print(f"{len(tr)} train / {len(ho)} holdout images, {len(classes)} classes", flush=True)
    model, _ = build(a.model, classes=len(classes))
    model.eval()  # BatchNorm frozen: running statistics in both stages
    for p in model.parameters():
        p.requires_grad_(False)
    named = dict(model.named_parameters())
    head = {n: p for n, p in named.items() if n.startswith("net.fc.")}
    stage2 = {n: p for n, p in named.items() if n.startswith("net.fc.") or n.startswith("net.layer4.")}
    for p in stage2.values():
        p.requires_grad_(True)

    best, curve = Best(), []
    # Stage 1: head on bottleneck features computed once per image.
    with torch.no_grad():
        feats = torch.cat([model.features(x[i:i + 64]) for i in range(0, len(x), 64)])
    train_stage("head", head, stage2, model.net.fc, (feats[tr], y[tr]), (feats[ho], y[ho]), a.head_epochs, 0, False, a, best, curve)
    head_best = best.epoch
    # Stage 2: the last stage (layer4) + head, augmented, from the best head.
    train_stage("unfrozen", stage2, stage2, model, (x[tr], y[tr]), (x[ho], y[ho]), a.epochs, 1, True, a, best, curve)
    if best.epoch == head_best:
        print(f"unfreezing did not improve the holdout: keeping the head-only model of epoch {head_best}", flush=True)
    restore(stage2, best.state)

    vitems, _ = load_folder(a.val, classes)
    xv, yv = tensorize(vitems, a.threads)
    _, val_acc = evaluate(model, xv, yv)
    seconds = time.time() - start
    print(f"best holdout accuracy {best.acc:.4f} (epoch {best.epoch}); val accuracy {val_acc:.4f}; {seconds:.1f} s", flush=True)
    if a.json:
        json.dump({"val_accuracy": val_acc, "best_holdout_accuracy": best.acc, "best_epoch": best.epoch,
                   "val_images": len(xv), "curve": curve, "seconds": seconds}, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
