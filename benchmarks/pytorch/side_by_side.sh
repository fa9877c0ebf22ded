#!/usr/bin/env bash
# ft finetune vs the same recipe in PyTorch 1.13 (benchmarks/pytorch/finetune_torch.py) on ML.NET's ResNet-18,
# ants/bees: train -> val scored once, seeds 0 1 2 (issue 17 item 4). Run from anywhere:
#
#   benchmarks/pytorch/side_by_side.sh [OUT_DIR]        # env: H (dataset root), SEEDS ("0 1 2"), THREADS (2)
#   EXTRA="--head-epochs 1 --epochs 1" SEEDS=0 benchmarks/pytorch/side_by_side.sh   # a quick check of the script
#
# Both loops use the defaults of ft finetune (no option besides --seed and --threads), 2 threads each, one at a time; the order
# alternates per seed (even seeds: ft first; odd: PyTorch first). Wall time = the whole process (start-up, decoding,
# both stages, val scoring). The load average is sampled every 15 s into OUT_DIR/load.tsv.
# Writes OUT_DIR/runs.tsv (one row per run) and OUT_DIR/summary.md (side_by_side_summary.py: mean, std and values per
# seed; ft/PyTorch ratio per seed of the whole run and of one unfrozen epoch).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO"
H=${H:-$REPO/../shared/datasets/hymenoptera_data}
SEEDS=${SEEDS:-"0 1 2"}
THREADS=${THREADS:-2}
read -r -a EXTRA <<<"${EXTRA:-}"   # options both loops understand (--epochs, --head-epochs, --batch, --lr, --patience, ...)
OUT=${1:-${TMPDIR:-/tmp}/ft-side-by-side-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
PY=/usr/bin/python3

dotnet build src/FeatureTransfer.Cli -c Release -nologo -v q >"$OUT/build.log"
FT=(dotnet "$REPO/src/FeatureTransfer.Cli/bin/Release/net10.0/ft.dll")
"${FT[@]}" models fetch resnet18-mlnet 2>&1 | tee "$OUT/fetch.log"
MODEL=${FT_MODELS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/featuretransfer/models}/resnet18-mlnet.onnx
test -f "$MODEL" || { echo "installed model not found at $MODEL" >&2; exit 1; }

( while true; do echo -e "$(date -u +%H:%M:%S)\t$(cut -d' ' -f1-3 /proc/loadavg)"; sleep 15; done ) >"$OUT/load.tsv" &
SAMPLER=$!
trap 'kill $SAMPLER 2>/dev/null || true' EXIT

echo -e "tool\tseed\tseconds\tval_accuracy\tbest_holdout\tbest_epoch\tepochs\tload_start\tload_end\tstarted_utc" >"$OUT/runs.tsv"
record() { # tool seed seconds log curve load_start started
  local line val hold best epochs
  line=$(grep -E "val accuracy" "$4" | tail -1)
  val=$(sed -E 's/.*val accuracy ([0-9.]+).*/\1/' <<<"$line")
  hold=$(sed -E 's/.*best holdout accuracy ([0-9.]+).*/\1/' <<<"$line")
  best=$(sed -E 's/.*\(epoch ([0-9]+)\).*/\1/' <<<"$line")
  epochs=$(grep -cE "^(info: )?epoch [0-9]+ \[" "$4" || true)
  echo -e "$1\t$2\t$3\t$val\t$hold\t$best\t$epochs\t$6\t$(cut -d' ' -f1 /proc/loadavg)\t$7" >>"$OUT/runs.tsv"
  echo "$1 seed $2: val $val, holdout $hold (epoch $best of $epochs), $3 s"
}
run_ft() {
  local s=$1 load t0 t1 started
  load=$(cut -d' ' -f1 /proc/loadavg); started=$(date -u +%H:%M:%S); t0=$(date +%s.%N)
  "${FT[@]}" finetune --model resnet18-mlnet --train "$H/train" --val "$H/val" --seed "$s" --threads "$THREADS" "${EXTRA[@]}" \
    --out "$OUT/ft-seed$s.onnx" >"$OUT/ft-seed$s.log" 2>&1
  t1=$(date +%s.%N)
  record ft "$s" "$(echo "$t1 - $t0" | bc)" "$OUT/ft-seed$s.log" "$OUT/ft-seed$s.curve.csv" "$load" "$started"
}
run_torch() {
  local s=$1 load t0 t1 started
  load=$(cut -d' ' -f1 /proc/loadavg); started=$(date -u +%H:%M:%S); t0=$(date +%s.%N)
  "$PY" benchmarks/pytorch/finetune_torch.py --model "$MODEL" --train "$H/train" --val "$H/val" --seed "$s" \
    --threads "$THREADS" "${EXTRA[@]}" --json "$OUT/torch-seed$s.json" >"$OUT/torch-seed$s.log" 2>&1
  t1=$(date +%s.%N)
  record pytorch "$s" "$(echo "$t1 - $t0" | bc)" "$OUT/torch-seed$s.log" "" "$load" "$started"
}

for s in $SEEDS; do
  if (( s % 2 == 0 )); then run_ft "$s"; run_torch "$s"; else run_torch "$s"; run_ft "$s"; fi
done

"$PY" benchmarks/pytorch/side_by_side_summary.py "$OUT"
echo "logs, models and curves: $OUT"
