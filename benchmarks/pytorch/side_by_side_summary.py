#!/usr/bin/python3
"""Summary of a side_by_side.sh run: side_by_side_summary.py OUT_DIR -> prints and writes OUT_DIR/summary.md.

Reads OUT_DIR/runs.tsv (one row per run), the per-run logs (epoch lines of both loops: stage and seconds) and
OUT_DIR/load.tsv. Reports val accuracy and wall time as mean +- sample std (and the values per seed), the wall-time
ratio ft / PyTorch per seed, and the median time of one unfrozen-stage epoch on each side (the part both loops
compute alike; whole-run wall times also differ by how many epochs early stopping let each run).
"""
import csv
import re
import statistics as st
import sys

EPOCH = re.compile(r"^epoch (\d+) \[(\w+)\]: .*\| ([0-9.]+) s$")


def epochs(log):
    rows = [EPOCH.match(line.strip()) for line in open(log)]
    return [(m.group(2), float(m.group(3))) for m in rows if m]


def main():
    out = sys.argv[1]
    rows = list(csv.DictReader(open(f"{out}/runs.tsv"), delimiter="\t"))
    loads = [float(line.split("\t")[1].split()[0]) for line in open(f"{out}/load.tsv") if "\t" in line]
    for r in rows:
        e = epochs(f"{out}/{'ft' if r['tool'] == 'ft' else 'torch'}-seed{r['seed']}.log")
        r["head_epochs"] = sum(1 for s, _ in e if s == "head")
        unfrozen = [t for s, t in e if s != "head"]
        r["unfrozen_epochs"] = len(unfrozen)
        r["unfrozen_epoch_s"] = st.median(unfrozen) if unfrozen else float("nan")
    seeds = [r["seed"] for r in rows if r["tool"] == "ft"]

    def cell(tool, key, fmt):
        v = [float(r[key]) for r in rows if r["tool"] == tool]
        sd = st.stdev(v) if len(v) > 1 else 0.0
        return f"{fmt.format(st.mean(v))} +- {fmt.format(sd)} (" + ", ".join(fmt.format(x) for x in v) + ")"

    lines = [f"| seeds {', '.join(seeds)} | ft finetune | PyTorch 1.13 |", "|---|---:|---:|"]
    lines.append(f"| val accuracy, mean +- std (per seed) | {cell('ft', 'val_accuracy', '{:.4f}')} | {cell('pytorch', 'val_accuracy', '{:.4f}')} |")
    lines.append(f"| best holdout accuracy | {cell('ft', 'best_holdout', '{:.3f}')} | {cell('pytorch', 'best_holdout', '{:.3f}')} |")
    lines.append(f"| epochs run, head + unfrozen (best epoch) | "
                 + " | ".join(", ".join(f"{r['head_epochs']}+{r['unfrozen_epochs']} ({r['best_epoch']})" for r in rows if r["tool"] == t)
                              for t in ("ft", "pytorch")) + " |")
    lines.append(f"| wall time of the whole run, s | {cell('ft', 'seconds', '{:.0f}')} | {cell('pytorch', 'seconds', '{:.0f}')} |")
    lines.append(f"| median s per unfrozen epoch (221 images, augmented) | {cell('ft', 'unfrozen_epoch_s', '{:.1f}')} | {cell('pytorch', 'unfrozen_epoch_s', '{:.1f}')} |")
    whole, epoch = [], []
    for r in rows:
        if r["tool"] == "ft":
            t = next(x for x in rows if x["tool"] == "pytorch" and x["seed"] == r["seed"])
            whole.append(float(r["seconds"]) / float(t["seconds"]))
            epoch.append(r["unfrozen_epoch_s"] / t["unfrozen_epoch_s"])
    lines.append("| ratio ft / PyTorch per seed: whole run; one unfrozen epoch | "
                 + ", ".join(f"{x:.2f}" for x in whole) + f" (mean {st.mean(whole):.2f}); "
                 + ", ".join(f"{x:.2f}" for x in epoch) + f" (mean {st.mean(epoch):.2f}) | |")
    lines.append("")
    lines.append(f"runs started {rows[0]['started_utc']} UTC; load average (1 min, every 15 s) {min(loads):.1f}-{max(loads):.1f}, "
                 f"median {st.median(loads):.1f}; total {sum(float(r['seconds']) for r in rows) / 60:.0f} min of runs")
    text = "\n".join(lines) + "\n"
    open(f"{out}/summary.md", "w").write(text)
    print(text, end="")


if __name__ == "__main__":
    main()
