#!/usr/bin/env bash
# ft finetune vs the same recipe in PyTorch 1.13 (benchmarks/pytorch/finetune_torch.py) on ML.NET's ResNet-18,
# ants/bees: train -> val scored once, seeds 0 1 2 (issue 17 item 4). Run from anywhere:
#
#   benchmarks/pytorch/side_by_side.sh [OUT_DIR]        # env: H (dataset root), SEEDS ("0 1 2"), THREADS (2)
#   EXTRA="--head-epochs 1 --epochs 1" SEEDS=0 benchmarks/pytorch/side_by_side.sh   # a quick check of the script
#
# Both loops use the defaults of ft finetune (no option besides --seed), 2 threads each, one at a time; the order
# alternates per seed (even seeds: ft first; odd: PyTorch first). Wall time = the whole process (start-up, decoding,
# both stages, val scoring). The load average is sampled every 15 s into OUT_DIR/load.tsv.
# Writes OUT_DIR/runs.tsv (one row per run) and OUT_DIR/summary.md (mean, std, range; ft/PyTorch time ratio per seed).
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

"$PY" - "$OUT" <<'EOF'
import csv, statistics as st, sys
out = sys.argv[1]
rows = list(csv.DictReader(open(f"{out}/runs.tsv"), delimiter="\t"))
loads = [float(l.split("\t")[1].split()[0]) for l in open(f"{out}/load.tsv") if "\t" in l]
def agg(tool, key):
    v = [float(r[key]) for r in rows if r["tool"] == tool]
    sd = st.stdev(v) if len(v) > 1 else 0.0
    return v, st.mean(v), sd
lines = ["| | ft finetune | PyTorch 1.13 |", "|---|---:|---:|"]
for key, name, fmt in (("val_accuracy", "val accuracy", "{:.4f}"), ("seconds", "wall time s", "{:.0f}")):
    cells = []
    for tool in ("ft", "pytorch"):
        v, m, sd = agg(tool, key)
        cells.append(f"{fmt.format(m)} +- {fmt.format(sd)} (" + ", ".join(fmt.format(x) for x in v) + ")")
    lines.append(f"| {name}, mean +- std (seeds {', '.join(r['seed'] for r in rows if r['tool'] == 'ft')}) | {cells[0]} | {cells[1]} |")
ratios = []
for r in rows:
    if r["tool"] == "ft":
        t = next(x for x in rows if x["tool"] == "pytorch" and x["seed"] == r["seed"])
        ratios.append(float(r["seconds"]) / float(t["seconds"]))
lines.append(f"| wall time ratio ft / PyTorch per seed | " + ", ".join(f"{x:.2f}" for x in ratios) + f" (mean {st.mean(ratios):.2f}) | |")
lines.append("")
lines.append(f"load average (1 min, sampled every 15 s): {min(loads):.1f}-{max(loads):.1f}, median {st.median(loads):.1f}")
open(f"{out}/summary.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
echo "logs, models and curves: $OUT"
