#!/usr/bin/env bash
# The gap between ML.NET's ResNet-18 features from JPEG files (its own decode + ResizeImages IsoCrop) and ft extract's
# (libjpeg-turbo + torchvision's antialiased resize) on the same photos, and where it comes from: on identical pixels
# the two agree to float rounding (tests: MlNetResNet18Tests), so the gap is the pixels. Prints one table.
# Usage: benchmarks/MlNetResNet18Gap/compare.sh [IMAGE_FOLDER] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${1:-../shared/datasets/hymenoptera_data/val}
OUT=${2:-/tmp/ft-mlnet-gap}
mkdir -p "$OUT"
dotnet build src/FeatureTransfer.Cli -c Release -v q -nologo >/dev/null
dotnet build benchmarks/MlNetResNet18Gap -c Release -v q -nologo >/dev/null
FT="dotnet src/FeatureTransfer.Cli/bin/Release/net10.0/ft.dll"
$FT models fetch resnet18-mlnet >/dev/null
dotnet benchmarks/MlNetResNet18Gap/bin/Release/net10.0/MlNetResNet18Gap.dll "$DATA" "$OUT/mlnet"
$FT extract --model resnet18-mlnet --data "$DATA" --layers bottleneck --out "$OUT/ours.npy" 2>/dev/null
$FT extract --model resnet18-mlnet --data "$DATA" --layers bottleneck --exact-decode --out "$OUT/ours-exact.npy" 2>/dev/null
/usr/bin/python3 - "$DATA" "$OUT" <<'PY'
import json, os, sys
import numpy as np
from PIL import Image
import torchvision.transforms as T
data, out = sys.argv[1], sys.argv[2]
ids, theirs = [], []
for line in open(os.path.join(out, "mlnet.features.csv")):
    p, *v = line.rstrip("\n").split(",")
    ids.append(p); theirs.append(np.array(v, dtype=np.float32))
theirs = np.stack(theirs)
pix = np.fromfile(os.path.join(out, "mlnet.pixels.f32"), dtype=np.float32).reshape(len(ids), 3, 224, 224)
def ours(name):
    x = np.load(os.path.join(out, name))
    meta = json.load(open(os.path.join(out, name + ".meta.json")))
    order = {i: k for k, i in enumerate(meta["ids"])}
    return x[[order[i] for i in ids]]
# torchvision's pixels for the same files: what ft's exact decode feeds (bit-identical, tests: TorchvisionParityTests).
tv = T.Compose([T.Resize(224), T.CenterCrop(224)])
tvpix = np.stack([np.asarray(tv(Image.open(os.path.join(data, i)).convert("RGB")), dtype=np.float32).transpose(2, 0, 1) for i in ids])
d = np.abs(tvpix - pix)
print(f"{len(ids)} photos of {data}")
print(f"pixels, ML.NET IsoCrop resize vs torchvision resize+crop: mean |diff| {d.mean():.2f} of 255, 99th percentile {np.percentile(d, 99):.1f}, max {d.max():.0f}")
print("| ours | max |ours - ML.NET| / max|feature| | mean cosine | min cosine |")
print("|---|---:|---:|---:|")
for name, label in [("ours.npy", "ft extract (default: reduced-size JPEG decode)"), ("ours-exact.npy", "ft extract --exact-decode")]:
    a = ours(name)
    cos = (a * theirs).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(theirs, axis=1)
    print(f"| {label} | {np.abs(a - theirs).max() / np.abs(theirs).max():.4f} | {cos.mean():.5f} | {cos.min():.5f} |")
PY
