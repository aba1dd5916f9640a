"""Adds up an Nsight Compute CSV export (--page raw, metric gpu__time_duration.sum) per kernel:
launches and GPU microseconds per training step, largest first. Used by bench/profile_step.sh.

    python3 bench/kernel_profile.py report.csv --steps 2 [--top 40]
"""
import argparse
import collections
import csv
import re


def short(name):
    """A kernel's name without its template arguments and parameter list, so that one kernel
    instantiated for several shapes or dtypes stays one row per instantiation family."""
    name = re.sub(r"\(.*$", "", name)
    depth, out = 0, []
    for ch in name:
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    name = "".join(out).strip()
    name = re.sub(r"^(void|at::native::|)\s*", "", name)
    return name[-90:]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("csv")
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--top", type=int, default=40)
    a = p.parse_args()
    with open(a.csv, newline="") as f:
        rows = list(csv.reader(f))
    header = next(i for i, r in enumerate(rows) if "Kernel Name" in r)
    cols = rows[header]
    name_col, time_col = cols.index("Kernel Name"), cols.index("gpu__time_duration.sum")
    count, ns = collections.Counter(), collections.Counter()
    for r in rows[header + 1:]:
        if len(r) <= max(name_col, time_col):
            continue
        try:
            t = float(r[time_col].replace(",", ""))
        except ValueError:
            continue  # the units row
        k = short(r[name_col])
        count[k] += 1
        ns[k] += t
    total_n, total_ns = sum(count.values()), sum(ns.values())
    print(f"{total_n / a.steps:.0f} kernels and {total_ns / a.steps / 1e3:.1f} us of GPU time per step "
          f"(kernels one at a time, launch gaps excluded)")
    print(f"{'us/step':>9} {'share':>6} {'launches/step':>13}  kernel")
    for k, t in ns.most_common(a.top):
        print(f"{t / a.steps / 1e3:9.1f} {100 * t / total_ns:5.1f}% {count[k] / a.steps:13.1f}  {k}")


if __name__ == "__main__":
    main()
