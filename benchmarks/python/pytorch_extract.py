#!/usr/bin/env python3
"""PyTorch CPU reference for the extraction benchmark (Debian python3-torch / torchvision, weights=None).

torchvision ImageFolder + Resize(256) + CenterCrop(224) + ToTensor + Normalize + DataLoader, and a forward hook
on the bottleneck (the classifier's input), as a PyTorch user would extract features.
Usage: pytorch_extract.py ARCH IMAGE_ROOT [--batch 32] [--threads 2] [--workers 1]
Prints: images=<n> seconds=<s> img_per_s=<r> peak_mb=<m>
"""
import argparse, resource, time
import torch, torchvision
from torchvision import transforms

ap = argparse.ArgumentParser()
ap.add_argument("arch"); ap.add_argument("root")
ap.add_argument("--batch", type=int, default=32); ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--workers", type=int, default=1)
a = ap.parse_args()
torch.set_num_threads(a.threads)
model = getattr(torchvision.models, a.arch)(weights=None).eval()
# The bottleneck: input of the final classifier layer.
head = model.fc if hasattr(model, "fc") else [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
feats = []
head.register_forward_hook(lambda m, inp, out: feats.append(inp[0].detach()))
tf = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
                         transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
ds = torchvision.datasets.ImageFolder(a.root, transform=tf)
dl = torch.utils.data.DataLoader(ds, batch_size=a.batch, num_workers=a.workers)
t = time.perf_counter(); n = 0
with torch.no_grad():
    for x, _ in dl:
        model(x); n += x.shape[0]
s = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(f"images={n} seconds={s:.3f} img_per_s={n / s:.2f} peak_mb={peak:.0f}")
