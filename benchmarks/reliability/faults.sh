#!/usr/bin/env bash
# Seeded fault trials on the real `ft extract` (docs/reliability.md): SIGKILL and SIGTERM at seeded points, a disk that
# fills up (a small tmpfs) and a read-only remount after K checkpoints; each job is then resumed on the healed target and
# compared byte for byte with an uninterrupted run, and any file under the final name must always be the complete one.
# The trials are the CI test FaultTrialTests (10 trials there); this runs N of them and keeps a CSV of every trial.
#
#   sudo bash benchmarks/reliability/faults.sh [trials=100] [seed=20261206]
#
# Root mounts the tmpfs; without root the disk-full and read-only trials are replaced by kills (the log says so).
set -euo pipefail
cd "$(dirname "$0")/../.."
trials=${1:-100}
seed=${2:-20261206}
report="$PWD/benchmarks/reliability/faults-seed$seed-n$trials.csv"
dotnet build tests/FeatureTransfer.Tests -c Release -v quiet -nologo
FT_FAULT_TRIALS=$trials FT_FAULT_SEED=$seed FT_FAULT_REPORT=$report \
  dotnet test tests/FeatureTransfer.Tests -c Release --no-build --filter "FullyQualifiedName~FaultTrialTests" \
  --logger "console;verbosity=detailed"
echo "per-trial results: $report"
tail -n 1 "$report"
