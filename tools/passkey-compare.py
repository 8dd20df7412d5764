#!/usr/bin/env python3
"""Tables of a passkey sweep (scripts/passkey-sweep.sh): per configuration and length, exact
match with a Wilson 95% interval, digits right with a bootstrap interval over prompts, the
key's retention (kept: share of its tokens held; intact: share of caches holding a whole
statement), the three-way split (retained in every cache / well formed / read given retained), and McNemar's exact test on
exact match against a baseline over the prompts both ran (paired by seed, length, bin, index).

  tools/passkey-compare.py data/passkey/smollm2/paper/NS64-S512 [--baseline window] [--markdown]
"""
import argparse
import glob
import json
import math
import os
import random
import sys


def wilson(k, n, z=1.96):
    if n == 0:
        return 0.0, 1.0
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)


def bootstrap(values, rounds=2000, seed=1):
    if not values:
        return 0.0, 1.0
    rng = random.Random(seed)
    means = sorted(sum(rng.choice(values) for _ in values) / len(values) for _ in range(rounds))
    return means[int(0.025 * (rounds - 1) + 0.5)], means[int(0.975 * (rounds - 1) + 0.5)]


def mcnemar(b, c):
    """Two-sided exact McNemar p-value for b and c discordant pairs."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def load(root):
    """{config: {(seed, length, bin, index): sample}}"""
    out = {}
    for path in sorted(glob.glob(os.path.join(root, "*", "L*-seed*.json"))):
        config = os.path.basename(os.path.dirname(path))
        with open(path) as f:
            d = json.load(f)
        for s in d["samples"]:
            out.setdefault(config, {})[(d["seed"], s["length"], s["bin"], s["index"])] = s
    return out


def retained(s):
    return s["key_intact"] >= 1.0


def formed(s):
    return s["digits"] >= len(s["key"]) if s["key"].isdigit() else any(ch.isalpha() for ch in s["answer"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root")
    ap.add_argument("--baseline", default="window")
    ap.add_argument("--order", default="", help="configurations in this order, comma-separated")
    ap.add_argument("--by-bin", action="store_true",
                    help="also a table of exact match and key intact share per depth bin")
    args = ap.parse_args()
    data = load(args.root)
    if not data:
        sys.exit(f"passkey-compare: no results under {args.root}")
    lengths = sorted({k[1] for cfg in data.values() for k in cfg})
    order = [c for c in args.order.split(",") if c in data] or sorted(data)
    order += [c for c in sorted(data) if c not in order]
    base = data.get(args.baseline, {})
    print(f"| config | length | n | exact [95% CI] | digits [95% CI] | kept | intact | retained | formed | read given retained | vs {args.baseline}: +/- | McNemar p |")
    print("|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for length in lengths:
        for config in order:
            samples = {k: s for k, s in data[config].items() if k[1] == length}
            if not samples:
                continue
            n = len(samples)
            exact = sum(s["exact"] for s in samples.values())
            lo, hi = wilson(exact, n)
            digits = [s["score"] for s in samples.values()]
            dlo, dhi = bootstrap(digits, seed=length)
            kept = sum(s["key_kept"] for s in samples.values()) / n
            intact = sum(s["key_intact"] for s in samples.values()) / n
            ret = sum(retained(s) for s in samples.values())
            form = sum(formed(s) for s in samples.values())
            read = sum(retained(s) and s["exact"] for s in samples.values())
            cmp_, p = "", ""
            if config != args.baseline:
                common = [k for k in samples if k in base]
                if common:
                    b = sum(samples[k]["exact"] and not base[k]["exact"] for k in common)
                    c = sum(base[k]["exact"] and not samples[k]["exact"] for k in common)
                    cmp_, p = f"+{b}/-{c} of {len(common)}", f"{mcnemar(b, c):.3g}"
            print(f"| {config} | {length} | {n} | {exact / n:.2f} [{lo:.2f}, {hi:.2f}] | "
                  f"{sum(digits) / n:.2f} [{dlo:.2f}, {dhi:.2f}] | {kept:.2f} | {intact:.2f} | {ret}/{n} | {form}/{n} | "
                  f"{read}/{ret} | {cmp_} | {p} |")
    if not args.by_bin:
        return
    bins = sorted({k[2] for cfg in data.values() for k in cfg})
    print()
    print("| config | length | " + " | ".join(f"bin {b}: exact / intact" for b in bins) + " |")
    print("|---|---:|" + "---:|" * len(bins))
    for length in lengths:
        for config in order:
            cells = []
            for b in bins:
                xs = [s for k, s in data[config].items() if k[1] == length and k[2] == b]
                if not xs:
                    cells.append("-")
                    continue
                cells.append(f"{sum(x['exact'] for x in xs) / len(xs):.2f} / "
                             f"{sum(x['key_intact'] for x in xs) / len(xs):.2f}")
            if any(c != "-" for c in cells):
                print(f"| {config} | {length} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
