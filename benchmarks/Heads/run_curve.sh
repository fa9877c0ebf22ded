#!/bin/sh
# Learning curve of issue 11 (docs/heads-and-reports.md): `ft run` on Fashion-MNIST target classes 5-9 with the
# embedded fashion-source backbone, N labelled training images per class, tested on all 5,000 target t10k images.
#   benchmarks/Heads/run_curve.sh OUT_DIR [SIZES] [SEEDS] [extra ft run options...]
#   e.g. benchmarks/Heads/run_curve.sh curve "10 50 100 1000" "0 1 2"
# One `ft run` per (size, seed) into OUT_DIR/n<N>_s<S>/ (skipped when its metrics.json exists), one at a time;
# then curve_table.py OUT_DIR prints the table. FT overrides the command (default: the Release build of this tree).
set -eu
out=${1:?usage: run_curve.sh OUT_DIR [SIZES] [SEEDS] [ft run options]}
sizes=${2:-"10 50 100 1000"}
seeds=${3:-"0 1 2"}
shift $(( $# < 3 ? $# : 3 ))
root=$(cd "$(dirname "$0")/../.." && pwd)
ft=${FT:-"dotnet $root/src/FeatureTransfer.Cli/bin/Release/net10.0/ft.dll"}
mkdir -p "$out"
for n in $sizes; do
  for s in $seeds; do
    dir="$out/n${n}_s${s}"
    [ -f "$dir/metrics.json" ] && continue
    start=$(date +%s)
    $ft run --train idx:/usr/share/datasets/fashion-mnist --test idx:/usr/share/datasets/fashion-mnist:t10k \
      --classes sandal,shirt,sneaker,bag,ankle-boot --per-class "$n" --seed "$s" --head svm \
      --layers bottleneck --layers fne --norm none,standardize,fne --folds 5 --score-all "$@" --out "$dir" > "$out/n${n}_s${s}.log" 2>&1
    echo "n=$n seed=$s: $(( $(date +%s) - start )) s" | tee -a "$out/wall.txt"
  done
done
