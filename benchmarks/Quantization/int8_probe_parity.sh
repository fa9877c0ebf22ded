#!/usr/bin/env bash
# Transfer accuracy of int8 vs fp32 backbones as a user would see it (issue #21 item 3, accuracy target: within 0.5
# points): on each re-split, the model is quantized with `ft quantize` calibrated on that re-split's TRAINING part only,
# then `ft run` (defaults: it chooses layers, normalization and head by cross-validation on the training part) runs on
# the fp32 and on the int8 model with the same train/test parts; the test accuracy of each run's own chosen
# configuration is recorded. Pretrained models only:
#   - ML.NET's ImageNet ResNet-18 and SqueezeNet 1.1 (fp32 copy) on the 398 ants/bees photos: R stratified re-splits of
#     train + val pooled, with the official sizes (245 train / 153 test), seeds 0..R-1 fixed here;
#   - the fashion-source backbone on Fashion-MNIST 5-9 at 100 labels per class (`--per-class 100 --seed S`, S = 0..R-1),
#     tested on all 5,000 target test images; calibration on the same 500 training images.
# Accuracy only (no timing): the load of the machine does not change the figures.
# Usage: benchmarks/Quantization/int8_probe_parity.sh [OUT_DIR] [R=5] [MODELS="resnet18-mlnet squeezenet fashion-source"]
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-/tmp/ft-int8-probe}
R=${2:-5}
MODELS=${3:-resnet18-mlnet squeezenet fashion-source}
H=$(realpath ../shared/datasets/hymenoptera_data)
FASHION=/usr/share/datasets/fashion-mnist
CLASSES=sandal,shirt,sneaker,bag,ankle-boot
mkdir -p "$OUT"
dotnet build src/FeatureTransfer.Cli -c Release -v q -nologo >/dev/null
rm -rf "$OUT/bin" && cp -r src/FeatureTransfer.Cli/bin/Release/net10.0 "$OUT/bin"
FT="dotnet $OUT/bin/ft.dll"
$FT models fetch resnet18-mlnet >/dev/null

# Re-splits of the pooled photos as symlink folders, stratified, with the official per-class sizes.
python3 - "$H" "$OUT/splits" "$R" <<'PY'
import os, random, shutil, sys
src, dst, r = sys.argv[1], sys.argv[2], int(sys.argv[3])
shutil.rmtree(dst, ignore_errors=True)
for cls in ('ants', 'bees'):
    pool = []
    for part in ('train', 'val'):
        d = os.path.join(src, part, cls)
        pool += sorted(os.path.join(d, f) for f in os.listdir(d) if not f.startswith('.'))
    n_train = len([f for f in os.listdir(os.path.join(src, 'train', cls)) if not f.startswith('.')])
    for s in range(r):
        files = pool[:]
        random.Random(1000 + s).shuffle(files)
        for i, f in enumerate(files):
            d = os.path.join(dst, f'split{s}', 'train' if i < n_train else 'test', cls)
            os.makedirs(d, exist_ok=True)
            os.symlink(f, os.path.join(d, f'{i:03d}_{os.path.basename(f)}'))
PY

model_path() {
  case $1 in
    resnet18-mlnet) echo resnet18-mlnet ;;
    squeezenet) realpath ../shared/models/derived/SqueezeNet_fp32_from_fp16.onnx ;;
    fashion-source) realpath onnx-models/fashion-source/fashion-source.onnx ;;
  esac
}

# `ft run` prints "chosen: LABEL (CV m +- s); test accuracy P%, macro-F1 F".
accuracy() { grep -o 'test accuracy [0-9.]*%' "$1" | head -1 | awk '{printf "%.4f", substr($3, 1, length($3) - 1) / 100}'; }
chosen() { grep -o 'chosen: [^(]*' "$1" | head -1 | sed 's/^chosen: //; s/[[:space:]]*$//'; }

csv="$OUT/int8_probe_parity.csv"
[ -f "$csv" ] || echo "model,split,fp32_accuracy,int8_accuracy,change_points,fp32_chosen,int8_chosen,load" > "$csv"
for m in $MODELS; do
  for s in $(seq 0 $((R - 1))); do
    grep -q "^$m,$s," "$csv" && continue   # resumable
    dir="$OUT/$m/split$s" && mkdir -p "$dir"
    if [ "$m" = fashion-source ]; then
      data=(--train "idx:$FASHION" --test "idx:$FASHION:t10k" --classes "$CLASSES" --per-class 100 --seed "$s")
      calib=(--calibrate "idx:$FASHION" --classes "$CLASSES" --per-class 100 --seed "$s")
    else
      data=(--train "$OUT/splits/split$s/train" --test "$OUT/splits/split$s/test")
      calib=(--calibrate "$OUT/splits/split$s/train")
    fi
    $FT quantize -m "$(model_path "$m")" "${calib[@]}" --calibration-images 200 --holdout-images 0 \
      -o "$dir/int8.onnx" > "$dir/quantize.out" 2>&1
    $FT run --model "$(model_path "$m")" "${data[@]}" -o "$dir/fp32" > "$dir/fp32.out" 2>&1
    $FT run --model "$dir/int8.onnx" "${data[@]}" -o "$dir/int8" > "$dir/int8.out" 2>&1
    a=$(accuracy "$dir/fp32.out"); b=$(accuracy "$dir/int8.out")
    change=$(python3 -c "print(f'{100 * ($b - $a):+.2f}')")
    echo "$m,$s,$a,$b,$change,\"$(chosen "$dir/fp32.out")\",\"$(chosen "$dir/int8.out")\",$(cut -d' ' -f1 /proc/loadavg)" >> "$csv"
    echo "$m split $s: fp32 $a, int8 $b ($change points)"
  done
done
python3 - "$csv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print("| model | re-splits | fp32 test accuracy | int8 test accuracy | change (points), mean +- std | within 0.5 points |")
print("|---|---:|---:|---:|---:|---|")
for m in dict.fromkeys(r['model'] for r in rows):
    rs = [r for r in rows if r['model'] == m]
    a = [float(r['fp32_accuracy']) for r in rs]; b = [float(r['int8_accuracy']) for r in rs]
    d = [100 * (y - x) for x, y in zip(a, b)]
    sd = statistics.stdev(d) if len(d) > 1 else 0.0
    print(f"| {m} | {len(rs)} | {statistics.mean(a):.4f} | {statistics.mean(b):.4f} | {statistics.mean(d):+.2f} +- {sd:.2f} | {'yes' if abs(statistics.mean(d)) <= 0.5 else 'no'} |")
PY
