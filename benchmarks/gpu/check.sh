#!/usr/bin/env bash
# The GPU check, in the folder benchmarks/gpu/prepare.sh made. Needs no network and no .NET: only the NVIDIA driver
# (CUDA 13, i.e. driver 580 or newer) and the libraries ONNX Runtime 1.32's CUDA provider loads: CUDA 13 (libcudart,
# libcublas, libcublasLt, libcurand) and cuDNN 9, found by the loader (ldconfig or LD_LIBRARY_PATH).
#
#   ./check.sh [--images N]       (default: all 153 photos)
#
# 1. Lists what is missing; exits 4 without an NVIDIA driver or GPU, 5 when CUDA/cuDNN libraries are missing.
# 2. Extracts features of the photos with ResNet-18 and the int8 MobileNetV2, bottleneck and FNE, on the CPU and on
#    CUDA (TF32 off), and checks they agree: same rows and ids, max |cpu - cuda| <= 1e-3 x max |feature|.
# 3. Prints img/s for both devices and the time of one fine-tuning step (ResNet-18, all layers, batch 32) on CUDA.
# Exit 0 when everything agrees, 1 on any mismatch or failed run. Takes a few minutes (well under 8 on one GPU).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
app=$here/app
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
limit=()
if [ "${1:-}" = "--images" ] && [ -n "${2:-}" ]; then limit=(--limit "$2"); fi

for need in "$app/ft" "$app/FeatureTransfer.Benchmarks" "$here/models/resnet18.onnx" "$here/models/mobilenetv2-12-int8.onnx" "$here/photos/val"; do
  [ -e "$need" ] || { echo "check.sh: $need is missing: make this folder with benchmarks/gpu/prepare.sh" >&2; exit 2; }
done

echo "== 1. what ONNX Runtime 1.32's CUDA provider needs"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
"$app/FeatureTransfer.Benchmarks" gpu probe
status=$?
if [ $status -ne 0 ]; then
  case $status in
    4) echo "check.sh: no GPU (no NVIDIA driver, or it reports no GPU): nothing to check here" ;;
    5) echo "check.sh: install the missing CUDA 13 / cuDNN 9 libraries above, or add their folder to LD_LIBRARY_PATH" ;;
    *) echo "check.sh: this folder's build cannot use CUDA (exit $status)" ;;
  esac
  exit $status
fi

failures=0
declare -A rate
# ft prints "wrote N rows to F in S s" (extraction time only, without loading the model): N / S is img/s.
extract() { # model layers device out [extra ft flags]
  local model=$1 layers=$2 device=$3 out=$4
  shift 4
  local log=$work/$(basename "$out").log
  if ! "$app/ft" extract --model "$model" --data "$here/photos/val" --layers "$layers" --out "$out" --device "$device" \
      --tf32 false "${limit[@]}" "$@" >"$log" 2>&1; then
    echo "FAILED ft extract --model $(basename "$model") --layers $layers --device $device:"; tail -5 "$log"
    failures=$((failures + 1))
    return 1
  fi
  rate[$(basename "$out")]=$(awk '/^wrote / { for (i = 1; i <= NF; i++) if ($i == "rows") n = $(i-1); gsub(",", "", n); s = $(NF-1); printf "%.1f", n / s }' "$log")
}

echo "== 2. features on the CPU and on CUDA (TF32 off)"
printf "%-34s %12s %12s\n" "model, layers" "CPU img/s" "CUDA img/s"
for model in resnet18.onnx mobilenetv2-12-int8.onnx; do
  # The torchvision export carries no preprocessing: ImageNet's, at 224 px.
  pre=()
  [ "$model" = resnet18.onnx ] && pre=(--size 224)
  for layers in bottleneck fne; do
    name=${model%.onnx}-$layers
    extract "$here/models/$model" "$layers" cpu "$work/$name-cpu.npy" "${pre[@]}" || continue
    extract "$here/models/$model" "$layers" cuda "$work/$name-cuda.npy" "${pre[@]}" || continue
    printf "%-34s %12s %12s\n" "${model%.onnx}, $layers" "${rate[$name-cpu.npy]}" "${rate[$name-cuda.npy]}"
    "$app/FeatureTransfer.Benchmarks" gpu compare "$work/$name-cpu.npy" "$work/$name-cuda.npy" --tolerance 1e-3 || failures=$((failures + 1))
  done
done
grep -h "^device:" "$work"/*-cuda.npy.log 2>/dev/null | sort -u

echo "== 3. one fine-tuning step on CUDA"
"$app/FeatureTransfer.Benchmarks" gpu train-step --model "$here/models/resnet18.onnx" --device cuda --batch 32 || failures=$((failures + 1))

if [ $failures -ne 0 ]; then
  echo "check.sh: $failures check(s) failed"
  exit 1
fi
echo "check.sh: CPU and CUDA agree"
