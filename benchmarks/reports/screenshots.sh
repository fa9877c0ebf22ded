#!/usr/bin/env bash
# Screenshots of report.html in a real browser (Debian's chromium, headless), to look at every chart as a reader would:
# a two-class run (ants/bees photos, MobileNetV2 int8) and a five-class run (ft demo, Fashion-MNIST sample).
#   benchmarks/reports/screenshots.sh [OUT_DIR]        (default: /tmp/ft-report-screenshots)
# Needs ../shared beside the repository for the two-class run; installs chromium with apt-get when missing (as root).
# Writes OUT_DIR/<run>/report.html and OUT_DIR/<run>.png (1280 px wide, the page's full height).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-/tmp/ft-report-screenshots}"
mkdir -p "$out"
shared="$repo/../shared"

browser="$(command -v chromium || true)"
if [ -z "$browser" ]; then
  if [ "$(id -u)" = 0 ]; then apt-get install -y chromium >/dev/null; browser="$(command -v chromium)";
  else echo "chromium is missing: sudo apt-get install chromium" >&2; exit 1; fi
fi

dotnet build "$repo/src/FeatureTransfer.Cli" -c Release -v q -nologo >/dev/null
ft() { dotnet run --project "$repo/src/FeatureTransfer.Cli" -c Release --no-build -- "$@"; }

ft demo --out "$out/five-class" >"$out/five-class.log" 2>&1
if [ -d "$shared/datasets/hymenoptera_data" ]; then
  ft run --model "$shared/models/mobilenetv2-12-int8.onnx" --train "$shared/datasets/hymenoptera_data/train" \
         --test "$shared/datasets/hymenoptera_data/val" --out "$out/two-class" >"$out/two-class.log" 2>&1
else
  echo "no $shared/datasets/hymenoptera_data: two-class run skipped" >&2
fi

shoot() { # report.html -> png, full page height (measured by a first pass that prints the DOM height)
  local html="$1" png="$2" profile height
  profile="$(mktemp -d)"
  local flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
               --disable-component-update --disable-sync --hide-scrollbars --user-data-dir="$profile")
  # The page's height: a script element appended to a copy prints it into the DOM dump.
  local probe="$profile/probe.html"
  sed 's#</body>#<script>document.body.setAttribute("data-h", document.documentElement.scrollHeight)</script></body>#' "$html" > "$probe"
  height="$("$browser" "${flags[@]}" --window-size=1280,1000 --virtual-time-budget=3000 --dump-dom "file://$probe" 2>/dev/null \
            | grep -o 'data-h="[0-9]*"' | grep -o '[0-9]*' || true)"
  height="${height:-6000}"
  "$browser" "${flags[@]}" --window-size="1280,$((height + 40))" --virtual-time-budget=3000 --screenshot="$png" "file://$html" 2>/dev/null
  rm -rf "$profile"
  echo "$png (1280 x $((height + 40)))"
}

for run in five-class two-class; do
  [ -f "$out/$run/report.html" ] && shoot "$out/$run/report.html" "$out/$run.png"
done
