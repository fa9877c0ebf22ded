#!/usr/bin/env bash
# ft finetune with its defaults on ML.NET's ImageNet ResNet-18 (NuGet Microsoft.ML.DnnImageFeaturizer.ResNet18) and the
# ants/bees photos: the official train split trains (its holdout makes every choice), the val split is scored once per
# seed. Seeds 0, 1, 2 fixed beforehand. Then the seed-0 model is used as a backbone by ft extract, ft run and ft export.
# Usage: benchmarks/FineTune/resnet18_hymenoptera.sh [OUT_DIR] [EXTRA ft finetune OPTIONS...]
#        (writes OUT_DIR/resnet18_hymenoptera.csv and .md; extra options are for recipes chosen by resnet18_recipe_cv.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
H=../shared/datasets/hymenoptera_data
OUT=${1:-/tmp/ft-bench-resnet18}
shift || true
EXTRA=("$@")
mkdir -p "$OUT"
dotnet build src/FeatureTransfer.Cli -c Release -v q -nologo >/dev/null
# A copy of the build, so that rebuilding the repository meanwhile cannot change the tool between seeds.
rm -rf "$OUT/bin" && cp -r src/FeatureTransfer.Cli/bin/Release/net10.0 "$OUT/bin"
FT="dotnet $OUT/bin/ft.dll"
$FT models fetch resnet18-mlnet >/dev/null

csv="$OUT/resnet18_hymenoptera.csv"
echo "seed,val_accuracy,epochs,best_epoch_stage,wall_s,user_s,peak_rss_mb,load_before,load_after" > "$csv"
for seed in 0 1 2; do
  load_before=$(cut -d' ' -f1 /proc/loadavg)
  /usr/bin/time -f "%e %U %M" -o "$OUT/time-$seed.txt" \
    $FT finetune --model resnet18-mlnet --train "$H/train" --val "$H/val" --seed "$seed" "${EXTRA[@]}" --out "$OUT/seed$seed.onnx" \
    > "$OUT/seed$seed.out" 2> "$OUT/seed$seed.log"
  load_after=$(cut -d' ' -f1 /proc/loadavg)
  read -r wall user rss < "$OUT/time-$seed.txt"
  acc=$(grep -o 'val accuracy [0-9.]*' "$OUT/seed$seed.out" "$OUT/seed$seed.log" | head -1 | awk '{print $3}')
  epochs=$(($(wc -l < "$OUT/seed$seed.curve.csv") - 1))
  best=$(grep -o 'best holdout accuracy [0-9.]* (epoch [0-9]*)' "$OUT/seed$seed.out" "$OUT/seed$seed.log" | head -1 | grep -o 'epoch [0-9]*' | awk '{print $2}')
  stage=$(awk -F, -v e="$best" 'NR > 1 && $1 == e { print $2 }' "$OUT/seed$seed.curve.csv")
  echo "$seed,$acc,$epochs,$stage,$wall,$user,$((rss / 1024)),$load_before,$load_after" >> "$csv"
  echo "seed $seed: val accuracy $acc, $epochs epochs (best: $stage), ${wall} s wall, load $load_before -> $load_after"
done

python3 - "$csv" > "$OUT/resnet18_hymenoptera.md" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
acc = [float(r["val_accuracy"]) for r in rows]
print("| seed | val accuracy | epochs | best checkpoint | wall | peak RSS | load |")
print("|---:|---:|---:|---|---:|---:|---|")
for r in rows:
    print(f"| {r['seed']} | {float(r['val_accuracy']):.4f} | {r['epochs']} | {r['best_epoch_stage']} | {float(r['wall_s']):.0f} s | {r['peak_rss_mb']} MB | {r['load_before']} -> {r['load_after']} |")
print(f"\nmean {statistics.mean(acc):.4f} (min {min(acc):.4f}, max {max(acc):.4f}) over seeds 0-2")
PY
cat "$OUT/resnet18_hymenoptera.md"

# The fine-tuned model is an ordinary backbone: extract, run (choice by CV) and export (one ONNX classifier).
$FT extract --model "$OUT/seed0.onnx" --data "$H/val" --layers bottleneck --out "$OUT/seed0-val.npy" 2>&1 | tail -1
$FT run --model "$OUT/seed0.onnx" --train "$H/train" --test "$H/val" --out "$OUT/run-seed0" 2>&1 | grep -E "^chosen:"
$FT export --model "$OUT/seed0.onnx" --head "$OUT/run-seed0/head.ftm" --out "$OUT/seed0-classifier.onnx" 2>&1 | tail -1
