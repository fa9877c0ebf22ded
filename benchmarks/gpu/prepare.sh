#!/usr/bin/env bash
# Makes one folder to copy to a GPU machine, where check.sh then runs without network. Run it here, where the NuGet
# feed, python3 with torchvision (Debian's python3-torchvision) and ../shared are reachable; no GPU needed.
#
#   benchmarks/gpu/prepare.sh [OUT]      (default OUT: ./gpu-check)
#
# OUT/app/      ft and FeatureTransfer.Benchmarks, published self-contained for linux-x64 in the GPU flavour
#               (-p:OnnxRuntimeFlavor=Gpu: ONNX Runtime 1.32.0 with its CUDA provider; no .NET needed on the GPU machine)
# OUT/models/   resnet18.onnx (torchvision, weights=None: random but reproducible weights; no download) and
#               mobilenetv2-12-int8.onnx (the ONNX model zoo's int8 MobileNetV2, from ../shared/models)
# OUT/photos/   hymenoptera_data/val (153 ant and bee photos, from ../shared/datasets)
# OUT/check.sh  the check itself (a copy of benchmarks/gpu/check.sh)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$(realpath -m "${1:-gpu-check}")
shared=$(realpath -m "$root/../shared")
python=/usr/bin/python3   # Debian's, with torch and torchvision

for need in "$shared/models/mobilenetv2-12-int8.onnx" "$shared/datasets/hymenoptera_data/val"; do
  [ -e "$need" ] || { echo "prepare.sh: $need is missing (../shared beside the repository)" >&2; exit 1; }
done
"$python" -c "import torch, torchvision" 2>/dev/null || { echo "prepare.sh: $python cannot import torch and torchvision (apt-get install python3-torchvision)" >&2; exit 1; }

rm -rf "$out"
mkdir -p "$out/app" "$out/models" "$out/photos"

# Published from a copy of the sources, so that this tree's obj/ folders stay on the CPU flavour.
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
tar -C "$root" --exclude=bin --exclude=obj -cf - Directory.Build.props Directory.Packages.props global.json \
  src tools onnx-models samples benchmarks/FeatureTransfer.Benchmarks | tar -C "$src" -xf -
for project in src/FeatureTransfer.Cli benchmarks/FeatureTransfer.Benchmarks; do
  echo "publishing $project (GPU flavour, self-contained linux-x64)"
  dotnet publish "$src/$project" -c Release -r linux-x64 --self-contained -p:OnnxRuntimeFlavor=Gpu -o "$out/app" -v quiet -nologo
done

# One native ONNX Runtime, the GPU build's (with the CUDA provider beside it), never the CPU package's as well.
runtimes=$(find "$out/app" \( -name libonnxruntime.so -o -name onnxruntime.dll -o -name libonnxruntime.dylib \) | wc -l)
if [ "$runtimes" -ne 1 ] || [ ! -e "$out/app/libonnxruntime_providers_cuda.so" ]; then
  echo "prepare.sh: expected one libonnxruntime.so and libonnxruntime_providers_cuda.so in $out/app, found:" >&2
  find "$out/app" -name '*onnxruntime*' >&2
  exit 1
fi

echo "exporting resnet18 (torchvision, weights=None)"
"$python" "$root/onnx-models/export_torchvision.py" resnet18 --out "$out/models" >/dev/null
cp "$shared/models/mobilenetv2-12-int8.onnx" "$out/models/"
cp -r "$shared/datasets/hymenoptera_data/val" "$out/photos/"
cp "$root/benchmarks/gpu/check.sh" "$out/check.sh"
chmod +x "$out/check.sh"

echo "ready: $out ($(du -sh "$out" | cut -f1)); copy it to the GPU machine and run: $(basename "$out")/check.sh"
