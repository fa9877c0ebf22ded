#!/usr/bin/python3
"""Summarizes run_curve.sh output: one Markdown row per size, mean +- std over the seeds of the test accuracy of
FNE + SVM and bottleneck + SVM (each preset's best-CV configuration, as `ft run` selects within a preset; metrics.json
`preset_best`), the raw-pixel SVM baseline (`baselines.raw_pixels`) and `ft run`'s own CV choice (`accuracy`), plus how
often FNE beats raw pixels / bottleneck per seed and the median wall time.
  curve_table.py OUT_DIR [--short]   (--short: the table of docs/heads-and-reports.md)"""
import glob, json, os, re, statistics, sys

def ms(v):
    if not v: return ""
    if len(v) == 1: return f"{v[0]:.3f}"
    return f"{statistics.mean(v):.3f} +- {statistics.pstdev(v):.3f}"

root = sys.argv[1]
rows = {}
for path in glob.glob(os.path.join(root, "n*_s*", "metrics.json")):
    n, s = map(int, re.search(r"n(\d+)_s(\d+)", path).groups())
    m = json.load(open(path))
    best = {c["layers"]: c for c in m["preset_best"]}
    solver = m["chosen"]["params"].get("solver", "")
    rows.setdefault(n, []).append((s, best["fne"]["test_accuracy_not_used_for_choice"], best["bottleneck"]["test_accuracy_not_used_for_choice"],
                                   m["baselines"]["raw_pixels"]["accuracy"], m["accuracy"],
                                   f'{m["chosen"]["layers"]}/{m["chosen"]["norm"]} l2={m["chosen"]["params"]["l2"]:g}', m["timings_s"]["total"], solver,
                                   f'{best["fne"]["norm"]} l2={best["fne"]["params"]["l2"]:g}'))
REF = {10: "0.86 / 0.79", 50: "0.92 / 0.88", 100: "0.92 / 0.90", 1000: "0.95 / 0.94"}
if "--short" in sys.argv:
    print("| N / class | seeds | FNE + SVM | bottleneck + SVM | raw-pixel SVM | `ft run`'s CV choice | FNE > raw pixels | FNE >= bottleneck | PyTorch reference FNE / raw (issue) | wall time (median) |")
    print("|---:|---|---:|---:|---:|---:|---|---|---|---:|")
    for n in sorted(rows):
        r = sorted(rows[n])
        fne, bot, raw, cho = ([x[i] for x in r] for i in (1, 2, 3, 4))
        print(f"| {n:,} | {','.join(str(x[0]) for x in r)} | **{ms(fne)}** | {ms(bot)} | {ms(raw)} | {ms(cho)} | "
              f"{sum(a > b for a, b in zip(fne, raw))} of {len(r)} | {sum(a >= b for a, b in zip(fne, bot))} of {len(r)} | {REF.get(n, '')} | {statistics.median(x[6] for x in r):.0f} s |")
    sys.exit(0)
print("| N / class | seeds | FNE + SVM | bottleneck + SVM | raw-pixel SVM | `ft run`'s CV choice | FNE > raw | FNE >= bottleneck | choices (seed: layers/norm l2) | FNE's norm/l2 by CV | solver | wall (median) |")
print("|---:|---|---:|---:|---:|---:|---|---|---|---|---|---:|")
for n in sorted(rows):
    r = sorted(rows[n])
    fne, bot, raw, cho = ([x[i] for x in r] for i in (1, 2, 3, 4))
    print(f"| {n:,} | {','.join(str(x[0]) for x in r)} | {ms(fne)} | {ms(bot)} | {ms(raw)} | {ms(cho)} | "
          f"{sum(a > b for a, b in zip(fne, raw))}/{len(r)} | {sum(a >= b for a, b in zip(fne, bot))}/{len(r)} | "
          f"{'; '.join(f'{x[0]}: {x[5]} ({x[4]:.3f})' for x in r)} | {'; '.join(x[8] for x in r)} | {','.join(sorted(set(x[7] for x in r)))} | {statistics.median(x[6] for x in r):.0f} s |")
