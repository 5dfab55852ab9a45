#!/usr/bin/env python3
"""Summarises the JSON output of cpu_peak and cpu_ops_bench (run with repetitions) as Markdown.

Usage: summarize.py cpu_peak.json cpu_ops_bench.json > summary.md

For every benchmark it gives the median and the best of the repetitions of its rate counter
(GFLOP/s or GB/s), and the best as a fraction of the ceiling cpu_peak measured at the same
thread count: peak f32 FMA FLOP/s for GFLOP/s, the DRAM triad (and the cache-resident triad)
for GB/s. Best-of-N is used for ceilings and kernels alike, because on a shared machine the
best repetition is the one least disturbed by other processes.
"""
import json
import re
import statistics
import sys


def load(path):
    """Returns (context, {run name: {"label", "counter", "values"}}) in file order."""
    with open(path) as f:
        data = json.load(f)
    runs = {}
    for b in data["benchmarks"]:
        if b.get("run_type", "iteration") != "iteration" or b.get("error_occurred"):
            continue
        counter = "GFLOP/s" if "GFLOP/s" in b else "GB/s"
        name = b.get("run_name", b["name"]).replace("/real_time", "")
        entry = runs.setdefault(name, {"label": b.get("label", ""), "counter": counter})
        entry.setdefault("values", []).append(b[counter])
    return data["context"], runs


def arg(name, key):
    m = re.search(rf"{key}:(\d+)", name)
    return int(m.group(1)) if m else None


def ceilings(runs):
    """Best peak GFLOP/s, copy GB/s, and triad GB/s (largest and smallest arrays) by threads."""
    peak, copy, triad = {}, {}, {}
    for name, r in runs.items():
        t, best = arg(name, "threads"), max(r["values"])
        if name.startswith("BM_peak_fma"):
            peak[t] = best
        elif name.startswith("BM_stream_copy"):
            copy[t] = best
        elif name.startswith("BM_stream_triad"):
            triad.setdefault(t, {})[arg(name, "MiB")] = best
    dram = {t: v[max(v)] for t, v in triad.items()}
    cache = {t: v[min(v)] for t, v in triad.items()}
    cache_mib = min((min(v) for v in triad.values()), default=0)
    return peak, copy, dram, cache, cache_mib


def main(peak_path, ops_path):
    peak_ctx, peak_runs = load(peak_path)
    ops_ctx, ops_runs = load(ops_path)
    reps = max((len(r["values"]) for r in ops_runs.values()), default=0)
    peak, copy, dram, cache, cache_mib = ceilings(peak_runs)
    for prog, ctx in (("cpu_peak", peak_ctx), ("cpu_ops_bench", ops_ctx)):
        load_avg = ", ".join(f"{x:.2f}" for x in ctx.get("load_avg", []))
        print(f"- {prog}: {ctx.get('date', '?')}, {ctx.get('num_cpus', '?')} CPUs, "
              f"load average at start {load_avg}")
    print(f"\nBest and median of {reps} repetitions.\n")
    print(f"| threads | peak f32 FMA GFLOP/s | copy GB/s | triad GB/s (DRAM) | "
          f"triad GB/s ({cache_mib} MiB arrays, cache) |")
    print("|---:|---:|---:|---:|---:|")
    for t in sorted(set(peak) | set(copy) | set(dram)):
        cells = [f"{d[t]:.1f}" if t in d else "" for d in (peak, copy, dram, cache)]
        print(f"| {t} | " + " | ".join(cells) + " |")
    print()
    print("| kernel | shape | threads | median | best | best / ceiling | best / cache triad |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, r in ops_runs.items():
        t = arg(name, "threads")
        short = re.sub(r"/threads:\d+", "", name.removeprefix("BM_"))
        best, med = max(r["values"]), statistics.median(r["values"])
        unit = r["counter"]
        ratio = cache_ratio = ""
        if unit == "GFLOP/s" and t in peak:
            ratio = f"{best / peak[t]:.2f} of peak"
        elif unit == "GB/s" and t in dram:
            ratio, cache_ratio = f"{best / dram[t]:.2f} of triad", f"{best / cache[t]:.2f}"
        print(f"| {short} | {r['label']} | {t} | {med:.1f} {unit} | {best:.1f} {unit} | {ratio} "
              f"| {cache_ratio} |")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
