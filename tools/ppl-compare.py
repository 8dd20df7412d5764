#!/usr/bin/env python3
"""Paired comparison of two streaming-perplexity runs over the same text (kvcascade perplexity
--json --bucket 1024): the ratio of B's perplexity to A's, with a 95% percentile bootstrap over
the 1K-token blocks (a block keeps its pairing), over all tokens and over the tokens beyond the
first S + NS (where bounded policies can differ at all).

  tools/ppl-compare.py window.json cascade.json [--skip 576]
"""
import argparse
import json
import math
import random
import sys


def blocks(path):
    with open(path) as f:
        d = json.load(f)
    # "nll" is the block's mean; keep sums so blocks of unequal size weigh right
    return d, [(b["begin"], b["count"], b["nll"] * b["count"]) for b in d["buckets"]]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--skip", type=int, default=None,
                    help="leave out blocks that begin before this position (default: sinks + size of A)")
    ap.add_argument("--rounds", type=int, default=4000)
    args = ap.parse_args()
    da, ba = blocks(args.a)
    db, bb = blocks(args.b)
    if [x[:2] for x in ba] != [x[:2] for x in bb]:
        sys.exit("ppl-compare: the runs' blocks differ (same text, --max-tokens and --bucket needed)")
    skip = args.skip if args.skip is not None else da["cache"].get("sinks", 0) + da["cache"].get("size", 0)

    def report(name, idx):
        if not idx:
            return
        rng = random.Random(1)
        def ratio(sel):
            ca = sum(ba[i][1] for i in sel)
            return math.exp((sum(bb[i][2] for i in sel) - sum(ba[i][2] for i in sel)) / ca)
        point = ratio(idx)
        boots = sorted(ratio([rng.choice(idx) for _ in idx]) for _ in range(args.rounds))
        lo, hi = boots[int(0.025 * (args.rounds - 1))], boots[int(0.975 * (args.rounds - 1))]
        pa = math.exp(sum(ba[i][2] for i in idx) / sum(ba[i][1] for i in idx))
        pb = math.exp(sum(bb[i][2] for i in idx) / sum(bb[i][1] for i in idx))
        print(f"{name}: {len(idx)} blocks, ppl A {pa:.3f}, B {pb:.3f}, B/A {point:.4f} "
              f"[95% CI {lo:.4f}, {hi:.4f}]{'  (B worse)' if lo > 1 else '  (B better)' if hi < 1 else '  (tie)'}")

    print(f"A: {args.a} ({da['cache']['policy']})\nB: {args.b} ({db['cache']['policy']})")
    report("all tokens", list(range(len(ba))))
    report(f"blocks from {skip}", [i for i, x in enumerate(ba) if x[0] >= skip])


if __name__ == "__main__":
    main()
