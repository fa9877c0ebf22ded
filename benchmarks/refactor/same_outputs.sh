#!/usr/bin/env bash
# Behaviour check for refactoring (issue #18): runs ft demo, ft extract (CSV, Parquet, NPY, all layers), ft run and
# ft export on the committed sample with the working tree's build and with a base commit's build, and compares every
# output file byte for byte. Files that record a time or a path are compared after masking those fields.
#
#   bash benchmarks/refactor/same_outputs.sh [base-ref=main]
#
# Exit 0 when everything matches; otherwise lists the files that differ (and the first differing lines of text files).
set -euo pipefail
cd "$(dirname "$0")/../.."
base=${1:-main}
work=$(mktemp -d)
trap 'git worktree remove --force "$work/base-src" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

git worktree add -q --detach "$work/base-src" "$base"
build() { dotnet build "$1/src/FeatureTransfer.Cli" -c Release -o "$2" -v quiet -nologo >/dev/null; }
build "$work/base-src" "$work/base-bin"
build "$PWD" "$work/head-bin"

sample="$PWD/samples/fashion-mnist"
run_all() { # $1 = ft.dll folder, $2 = output folder
  local ft="dotnet $1/ft.dll" o=$2
  mkdir -p "$o"
  (cd "$o" && $ft demo --out demo >/dev/null)
  for fmt in csv parquet npy; do
    (cd "$o" && $ft extract --data "$sample/train" --layers fne --out "extract.$fmt" >/dev/null)
  done
  (cd "$o" && $ft run --train "$sample/train" --test "$sample/test" --out run >/dev/null)
  (cd "$o" && $ft export --head run/head.ftm --out run/classifier.onnx >/dev/null && $ft export --head run/head.ftm --with-preprocessing --out run/classifier-pre.onnx >/dev/null)
}
run_all "$work/base-bin" "$work/base-out"
run_all "$work/head-bin" "$work/head-out"

# Wall times, durations and the temp folders' names are not behaviour: masked before comparing. head.ftm is a zip
# (entry timestamps differ): its entries are compared one by one.
status=0
/usr/bin/python3 - "$work/base-out" "$work/head-out" <<'PY' || status=1
import csv, io, os, re, sys, zipfile
base, head = sys.argv[1], sys.argv[2]
def mask_text(name, data):
    text = data.decode("utf-8", "replace")
    if name.endswith(".csv"):
        rows = list(csv.reader(io.StringIO(text)))
        if rows:
            timed = {i for i, h in enumerate(rows[0]) if h.endswith("_s")}
            out = io.StringIO(); w = csv.writer(out); w.writerow(rows[0])
            for r in rows[1:]: w.writerow(["T" if i in timed else c for i, c in enumerate(r)])
            text = out.getvalue()
    text = re.sub(r'"([a-z_]*_s|wall[a-z_]*|seconds|elapsed[a-z_]*|duration[a-z_]*)": *[0-9.eE+-]+', r'"\1": T', text)
    text = re.sub(r'[0-9]+(\.[0-9]+)? ?(s|ms|min)\b', 'T', text)
    text = re.sub(r'/(base|head)-(bin|out)/', '/X/', text)
    text = re.sub(r'20[0-9]{2}-[0-9]{2}-[0-9]{2}[T ][0-9:.]+Z?', 'DATE', text)
    text = re.sub(r'"timings_s": \{[^}]*\}', '"timings_s": T', text)
    text = re.sub(r'("[^"]*\.zip": )"[0-9a-f]{64}"', r'\1"SHA"', text)  # nested ML.NET zips carry entry times
    return text
TEXT = (".json", ".md", ".html", ".csv", ".txt")
def same(name, a, b):
    if a == b: return True, ""
    if name.endswith(TEXT):
        ta, tb = mask_text(name, a), mask_text(name, b)
        if ta == tb: return True, "same after masking times/paths"
        la, lb = ta.splitlines(), tb.splitlines()
        i = next((k for k in range(min(len(la), len(lb))) if la[k] != lb[k]), min(len(la), len(lb)))
        return False, f"line {i+1}: {la[i][:150] if i < len(la) else '<end>'!r} vs {lb[i][:150] if i < len(lb) else '<end>'!r}"
    return False, "binary"
def compare(rel, a, b):
    """Number of differing files; zips (head.ftm and the ML.NET models inside it) entry by entry."""
    if a != b and a[:2] == b"PK" and b[:2] == b"PK":
        za, zb = zipfile.ZipFile(io.BytesIO(a)), zipfile.ZipFile(io.BytesIO(b))
        if sorted(za.namelist()) != sorted(zb.namelist()): print("DIFFERS (entries):", rel); return 1
        return sum(compare(f"{rel}!{n}", za.read(n), zb.read(n)) for n in za.namelist())
    ok, why = same(rel, a, b)
    if not ok: print(f"DIFFERS: {rel}: {why}"); return 1
    if why: print(f"{why}: {rel}")
    return 0
def files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)
bad = 0
fb, fh = files(base), files(head)
for rel in sorted(set(fb) | set(fh)):
    if rel not in fh: print("missing in head:", rel); bad += 1; continue
    if rel not in fb: print("new in head:", rel); bad += 1; continue
    a, b = open(os.path.join(base, rel), "rb").read(), open(os.path.join(head, rel), "rb").read()
    bad += compare(rel, a, b)
print(f"{len(fb)} files compared, {bad} differ")
sys.exit(1 if bad else 0)
PY
[ $status -eq 0 ] && echo "same outputs as $base: demo, extract (csv/parquet/npy), run, export"
exit $status
