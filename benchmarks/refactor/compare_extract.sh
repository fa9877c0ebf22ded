#!/usr/bin/env bash
# Before/after extraction speed side by side in one run (issue 21 item 4): builds the benchmarks of a base commit and
# of the working tree, then alternates their `extract` runs (base, head, base, head, ...) and prints, per side, the
# median img/s of each method, (a)/(c'), and head/base of (a). Other jobs move absolute figures: read the ratios.
#
#   bash benchmarks/refactor/compare_extract.sh [base-ref=main] [pairs=3] [extract options...]
#   default options: --images 200 --rounds 1 --models mobilenet_v2 --methods a,cp --memory no
set -euo pipefail
cd "$(dirname "$0")/../.."
base=${1:-main}
pairs=${2:-3}
shift $(( $# < 2 ? $# : 2 ))
opts=("$@")
[ ${#opts[@]} -eq 0 ] && opts=(--images 200 --rounds 1 --models mobilenet_v2 --methods a,cp --memory no)
work=$(mktemp -d)
trap 'git worktree remove --force "$work/base-src" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

git worktree add -q --detach "$work/base-src" "$base"
ln -s "$(cd .. && pwd)/shared" "$work/shared" # the benchmarks find the photos at <repo>/../shared
build() { dotnet build "$1/benchmarks/FeatureTransfer.Benchmarks" -c Release -v quiet -nologo >/dev/null; }
build "$work/base-src"
build "$PWD"
dll=benchmarks/FeatureTransfer.Benchmarks/bin/Release/net10.0/FeatureTransfer.Benchmarks.dll
echo "# ${opts[*]}; $pairs pairs; base $(git rev-parse --short "$base"), head $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo '+changes'); load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq "$pairs"); do
  for side in base head; do
    root=$([ $side = base ] && echo "$work/base-src" || echo "$PWD")
    dotnet "$root/$dll" extract "${opts[@]}" 2>&1 | grep -E "round [0-9]+ " | sed "s/^/$side /" | tee -a "$work/rounds.txt"
  done
done
echo "# load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 - "$work/rounds.txt" <<'PY'
import re, statistics, sys
rates = {}
for line in open(sys.argv[1]):
    m = re.match(r"(base|head) (\S+) round \d+ (\S+): ([0-9.]+) img/s", line)
    if m: rates.setdefault((m[1], m[2], m[3]), []).append(float(m[4]))
med = {k: statistics.median(v) for k, v in rates.items()}
for (side, model, method), v in sorted(med.items()):
    print(f"  {side} {model} ({method}): median {v:.1f} img/s over {len(rates[(side, model, method)])} rounds")
for model in sorted({k[1] for k in med}):
    for side in ("base", "head"):
        if (side, model, "a") in med and (side, model, "cp") in med:
            print(f"  {side} {model}: (a)/(c') = {med[(side, model, 'a')] / med[(side, model, 'cp')]:.2f}")
    for method in sorted({k[2] for k in med if k[1] == model}):
        if ("base", model, method) in med and ("head", model, method) in med:
            print(f"  {model} ({method}) head/base = {med[('head', model, method)] / med[('base', model, method)]:.2f}")
PY
