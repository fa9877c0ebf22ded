#!/usr/bin/env bash
# int8 vs fp32 speed, side by side in one run (issue #21 item 3): torchvision ResNet-18 and MobileNetV2 exports (random
# weights are fine for speed), quantized with `ft quantize`, then per round and per model, fp32 and int8 alternately:
#   (c) raw ONNX Runtime forward on pre-decoded tensors, (a) `ft extract` bottleneck end to end with decoding,
#   (b) `ft extract` FNE end to end,
# each in a fresh process of benchmarks/FeatureTransfer.Benchmarks (`extract --rounds 1`, its own warm-up; (a) and (b)
# swap order every round). Prints the medians, the int8/fp32 speed-ups (raw forward first) and FNE/bottleneck time per
# variant: the median of the per-round ratios (a and b measured in the same process) beside the ratio of the medians;
# writes int8_speed.csv/.md.
# Run it on an idle machine (it records the load average of every measurement).
# Usage: benchmarks/Quantization/int8_speed.sh [OUT_DIR] [ROUNDS=6] [IMAGES=200] [THREADS=2] [ARCHS="resnet18 mobilenet_v2 resnet18-mlnet"]
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-/tmp/ft-bench-int8}
ROUNDS=${2:-6}  # even: (a) and (b) run last in a process equally often
IMAGES=${3:-200}
THREADS=${4:-2}
H=../shared/datasets/hymenoptera_data
mkdir -p "$OUT"
dotnet build src/FeatureTransfer.Cli -c Release -v q -nologo >/dev/null
dotnet build benchmarks/FeatureTransfer.Benchmarks -c Release -v q -nologo >/dev/null
# Copies of the builds, so that rebuilding the repository meanwhile cannot change the tools between rounds.
rm -rf "$OUT/ft" "$OUT/bench"
cp -r src/FeatureTransfer.Cli/bin/Release/net10.0 "$OUT/ft"
cp -r benchmarks/FeatureTransfer.Benchmarks/bin/Release/net10.0 "$OUT/bench"
FT="dotnet $OUT/ft/ft.dll"
BENCH="dotnet $OUT/bench/FeatureTransfer.Benchmarks.dll"

# resnet18-mlnet: ML.NET's ImageNet ResNet-18 (issue #17), pretrained, so its cosine and probe columns mean something;
# the torchvision exports have random weights (fine for speed). Its parity uses 100 held-out val photos.
ARCHS=${5:-resnet18 mobilenet_v2 resnet18-mlnet}
for arch in $ARCHS; do
  holdout=20
  if [ "$arch" = resnet18-mlnet ]; then
    [ -f "$OUT/$arch.onnx" ] || cp "$($FT models fetch resnet18-mlnet 2>&1 | grep -oE '^/[^ ]+\.onnx')" "$OUT/$arch.onnx"
    holdout=100
  fi
  [ -f "$OUT/$arch.onnx" ] || /usr/bin/python3 onnx-models/export_torchvision.py "$arch" --out "$OUT" >/dev/null
  [ -f "$OUT/$arch-int8.onnx" ] || $FT quantize -m "$OUT/$arch.onnx" --calibrate "$H/train" --calibration-images 100 \
      --holdout "$H/val" --holdout-images $holdout -o "$OUT/$arch-int8.onnx" > "$OUT/$arch-int8.quantize.txt" 2>&1
  grep -E "^wrote" "$OUT/$arch-int8.quantize.txt"
done

csv="$OUT/int8_speed.csv"
echo "arch,variant,round,method,img_s,load" > "$csv"
for round in $(seq 1 "$ROUNDS"); do
  for arch in $ARCHS; do
    # Alternate which variant runs first, so that neither always meets a warmer or cooler machine.
    if [ $((round % 2)) -eq 1 ]; then variants="fp32 int8"; else variants="int8 fp32"; fi
    for v in $variants; do
      model="$OUT/$arch.onnx"; [ "$v" = int8 ] && model="$OUT/$arch-int8.onnx"
      # a and b swap places every round: in a process of three sub-second jobs the one that runs last was 15-35%
      # slower whichever it was (6 processes, 2026-12-06 21:25 UTC), so a fixed order biased FNE/bottleneck.
      methods=c,a,b; [ $((round % 2)) -eq 0 ] && methods=c,b,a
      $BENCH extract --models "$model" --methods $methods --rounds 1 --images "$IMAGES" --threads "$THREADS" --memory no > "$OUT/run.txt" 2>&1
      grep -oE "round 1 [a-z]+: [0-9.]+ img/s +\(load average [0-9.]+" "$OUT/run.txt" \
        | sed -E "s/round 1 ([a-z]+): ([0-9.]+) img\/s +\(load average ([0-9.]+)/$arch,$v,$round,\1,\2,\3/" >> "$csv"
      echo "round $round $arch $v: $(grep -oE "round 1 [a-z]+: [0-9.]+ img/s" "$OUT/run.txt" | sed 's/round 1 //' | paste -sd' ')"
    done
  done
done

/usr/bin/python3 - "$csv" "$OUT" <<'PY' | tee "$OUT/int8_speed.md"
import csv, json, statistics, sys, datetime, os
rows = list(csv.DictReader(open(sys.argv[1])))
out = sys.argv[2]
med = {}
for r in rows:
    med.setdefault((r["arch"], r["variant"], r["method"]), []).append(float(r["img_s"]))
med = {k: statistics.median(v) for k, v in med.items()}
loads = [float(r["load"]) for r in rows]
print(f"# int8 vs fp32 ({datetime.date.today()}, {len(set(r['round'] for r in rows))} rounds, load average {min(loads):.2f}-{max(loads):.2f}, {os.cpu_count()} cores)\n")
paired = {}
for r in rows:
    paired.setdefault((r["arch"], r["variant"], r["round"]), {})[r["method"]] = float(r["img_s"])
def fne_ratio(arch, v):
    # time(b)/time(a) = rate(a)/rate(b), per round (same process), then the median over rounds
    rs = [m["a"] / m["b"] for (a, vv, _), m in paired.items() if a == arch and vv == v and "a" in m and "b" in m]
    return statistics.median(rs) if rs else float("nan")
print("| model | raw ORT fp32 | raw ORT int8 | raw int8/fp32 | ft extract fp32 | ft extract int8 | extract int8/fp32 | target | FNE/bottleneck time fp32 | int8 (target <= 1.3) | bottleneck cosine | probe accuracy fp32 -> int8 (held out) |")
print("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|")
for arch in dict.fromkeys(r["arch"] for r in rows):
    g = lambda v, m: med.get((arch, v, m), float("nan"))
    raw = g("int8", "c") / g("fp32", "c")
    ext = g("int8", "a") / g("fp32", "a")
    goal = 1.4 if arch == "mobilenet_v2" else 2.0
    target = min(goal, 0.9 * raw)
    random = "" if arch == "resnet18-mlnet" else " (random weights)"
    try:
        p = json.load(open(f"{out}/{arch}-int8.parity.json"))
        cos = next(l["cosine_mean"] for l in p["layers"] if l["preset"] == "bottleneck")
        cos = f"{cos:.4f}{random}"
        probe = "; ".join(f"{q['layers']} {q['fp32_accuracy']:.4f} -> {q['int8_accuracy']:.4f} ({q['images']} images)" for q in p.get("probes", []))
        probe = (probe or "n/a") + random
    except Exception:
        cos = probe = "n/a"
    print(f"| {arch} | {g('fp32','c'):.1f} | {g('int8','c'):.1f} | {raw:.2f}x | {g('fp32','a'):.1f} | {g('int8','a'):.1f} | {ext:.2f}x | "
          f">= {target:.2f}x: {'met' if ext >= target else 'NOT met'} | {fne_ratio(arch,'fp32'):.2f}x ({g('fp32','a')/g('fp32','b'):.2f}x) | "
          f"{fne_ratio(arch,'int8'):.2f}x ({g('int8','a')/g('int8','b'):.2f}x) | {cos} | {probe} |")
print("\nimg/s are medians over rounds; each (model, variant) ran in its own process per round, fp32 and int8 alternating first.")
print("FNE/bottleneck: median of the per-round ratios (a and b in the same process), in brackets the ratio of the medians.")
PY
