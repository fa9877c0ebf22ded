#!/usr/bin/env bash
# `ft quantize` on torchvision architectures none of the tests use (random weights: this checks that each one is
# quantized, passes onnx.checker and extracts FNE features with no option; its cosine says nothing about accuracy).
# For each: export, quantize (16 calibration photos, 8 held out), onnx.checker, `ft extract --layers fne` on 6 photos.
# Prints one table row per architecture; logs in OUT_DIR.
# Usage: benchmarks/Quantization/arch_sweep.sh [OUT_DIR] [ARCH ...]
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-/tmp/ft-arch-sweep}; shift || true
ARCHS=${*:-googlenet shufflenet_v2_x1_0 mnasnet0_5 mobilenet_v3_small efficientnet_b0 densenet121 regnet_x_400mf alexnet convnext_tiny}
H=../shared/datasets/hymenoptera_data
mkdir -p "$OUT/photos/ants"
for f in $(ls "$H/val/ants" | head -6); do ln -sf "$(realpath "$H/val/ants/$f")" "$OUT/photos/ants/$f"; done
dotnet build src/FeatureTransfer.Cli -c Release -v q -nologo >/dev/null
FT="dotnet src/FeatureTransfer.Cli/bin/Release/net10.0/ft.dll"
echo "| architecture | quantize s | quantize peak MB | Conv/Gemm/MatMul quantized (up to the features) | bottleneck cosine | onnx.checker | ft extract --layers fne |"
echo "|---|---:|---:|---|---:|---|---|"
for arch in $ARCHS; do
  log="$OUT/$arch.log"
  if [ ! -f "$OUT/$arch.onnx" ] && ! /usr/bin/python3 onnx-models/export_torchvision.py "$arch" --out "$OUT" > "$log" 2>&1; then
    echo "| $arch | export failed: $(tail -1 "$log") | | | | | |"; continue
  fi
  /usr/bin/time -f "%e %M" -o "$OUT/$arch.time" $FT quantize -m "$OUT/$arch.onnx" --calibrate "$H/train" --calibration-images 16 \
      --holdout "$H/val" --holdout-images 8 -o "$OUT/$arch-int8.onnx" >> "$log" 2>&1
  rc=$?
  read -r secs kb < "$OUT/$arch.time"
  if [ $rc -ne 0 ]; then echo "| $arch | $secs | $((kb / 1024)) | refused (exit $rc): $(grep -m1 'ft: error' "$log") | | | |"; continue; fi
  # "quantized/total (+ head) | cosine" from the parity report, one cell pair
  report=$(/usr/bin/python3 -c "import json; p=json.load(open('$OUT/$arch-int8.parity.json')); print(f\"{p['quantized_layers']}/{p['total_layers']} (+ {p['head_layers']} head layer fp32) | {next(l['cosine_mean'] for l in p['layers'] if l['preset']=='bottleneck'):.4f}\")")
  chk=$(/usr/bin/python3 -c "import onnx; onnx.checker.check_model('$OUT/$arch-int8.onnx'); print('passes')" 2>&1 | tail -1)
  $FT extract -m "$OUT/$arch-int8.onnx" --data "$OUT/photos" --layers fne -o "$OUT/$arch-fne.npy" --restart >> "$log" 2>&1
  ext=$(tail -1 "$log" | grep -oE "^wrote [0-9]+ rows" || echo "failed (see $log)")
  echo "| $arch | $secs | $((kb / 1024)) | $report | $chk | $ext |"
done
