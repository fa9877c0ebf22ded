#!/usr/bin/env bash
# Mutation fuzzing of every parser a user's file reaches (docs/reliability.md): N seeded cases per parser, each in a
# memory-capped worker process with a time limit; prints per parser the cases, crashes, hangs, untyped exceptions and
# distinct rejection reasons, and keeps any crashing input under fuzz-findings/ (make it a regression fixture in
# tests/FeatureTransfer.Tests/Fixtures/fuzz/<parser>/).
#
#   bash benchmarks/reliability/fuzz.sh [cases=100000] [seed=22] [parsers, comma-separated, e.g. jpeg-turbojpeg,onnx; default all]
#
# The CI budget is time, not cases: .ci/run sets FT_FUZZ_SECONDS=300 for all parsers together.
set -euo pipefail
cd "$(dirname "$0")/../.."
cases=${1:-100000}
seed=${2:-22}
only=${3:-}
report="$PWD/benchmarks/reliability/fuzz-seed$seed-n$cases${only:+-${only//,/-}}.txt"
: > "$report"
filter="FullyQualifiedName~FuzzTests.Mutants"
[ "${FT_FUZZ_NO_BUILD:-}" = 1 ] || dotnet build tests/FeatureTransfer.Tests -c Release -v quiet -nologo
set +e
FT_FUZZ_CASES=$cases FT_FUZZ_SEED=$seed FT_FUZZ_TARGETS=$only FT_FUZZ_REPORT=$report FT_FUZZ_FINDINGS="$PWD/fuzz-findings" \
  dotnet test tests/FeatureTransfer.Tests -c Release --no-build --filter "$filter" --logger "console;verbosity=normal"
status=$?
set -e
echo "figures: $report"
grep -v '^    ' "$report"
exit $status
