#!/usr/bin/env python3
"""Turns the result files of scripts/make-results.sh into markdown tables and gnuplot data.

usage: tools/plot-results.py DIR SET

Reads DIR/ppl_<model>_<tag>[_S<size>].json (kvcascade perplexity --json),
DIR/pk_<model>_<tag>_S<size>.json (kvcascade passkey --json) and
DIR/slots_<model>_<tag>_S<size>.txt (--slots-out), and writes DIR/tables.md, DIR/plot/*.dat and
DIR/plot/panels.gp (the lists tools/plot-*.gp loop over). Standard library only.
"""
import glob
import json
import math
import os
import re
import sys

POLICY_ORDER = ["full", "window", "cascade4", "cascade8", "cascade4new", "cascade8new", "h2o"]
POLICY_LABEL = {"full": "full", "window": "window (StreamingLLM)", "cascade4": "cascade C=4",
                "cascade8": "cascade C=8", "cascade4new": "cascade C=4, no score selection",
                "cascade8new": "cascade C=8, no score selection", "h2o": "H2O"}
# Shorter names for plot panel titles.
POLICY_SHORT = {"window": "window", "cascade4new": "C=4 no selection", "cascade8new": "C=8 no selection"}
MODEL_SHORT = {"smollm2": "SmolLM2", "gemma3": "Gemma 3"}
MODEL_LABEL = {"smollm2": "SmolLM2-135M-Instruct Q4_1", "gemma3": "Gemma 3 270M Q4_K_M"}
NAME = re.compile(r"^(ppl|pk|slots)_([a-z0-9]+)_([a-z0-9]+)(?:_S(\d+))?\.(json|txt)$")


def key(policy):
    return POLICY_ORDER.index(policy) if policy in POLICY_ORDER else 99


def load(dir_):
    found = {"ppl": {}, "pk": {}, "slots": {}}
    for path in sorted(glob.glob(os.path.join(dir_, "*"))):
        m = NAME.match(os.path.basename(path))
        if not m:
            continue
        kind, model, tag, size, _ = m.groups()
        size = int(size) if size else None
        if kind == "slots":
            found[kind][(model, tag, size)] = path
        else:
            with open(path) as f:
                found[kind][(model, tag, size)] = json.load(f)
    return found


def fmt_ppl(x):
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def fmt_acc(x):
    return "-" if x is None else f"{x:.2f}"


def write_tables(dir_, set_name, data):
    lines = []
    machine = os.path.join(dir_, "machine.txt")
    if os.path.exists(machine):
        lines += ["```", open(machine).read().strip(), "```", ""]
    models = sorted({k[0] for kind in ("ppl", "pk") for k in data[kind]})
    for model in models:
        lines.append(f"### {MODEL_LABEL.get(model, model)}")
        lines.append("")
        ppl = {k: v for k, v in data["ppl"].items() if k[0] == model}
        if ppl:
            lines.append("Perplexity on data/kjv.txt (streaming, strided prefill):")
            lines.append("")
            lines.append("| policy | NS + S | KV memory | tokens | ppl | first bucket | last bucket | tokens/s |")
            lines.append("|---|---|---|---|---|---|---|---|")
            for (m, tag, size), r in sorted(ppl.items(), key=lambda kv: (kv[0][2] or 0, key(kv[0][1]))):
                c = r["cache"]
                slots = f"{c['sinks']} + {c['size']}" if tag != "full" else f"{c['context']} (all)"
                b = r["buckets"]
                lines.append(
                    f"| {POLICY_LABEL.get(tag, tag)} | {slots} | {r['kv_bytes'] / 2**20:.1f} MiB | "
                    f"{r['tokens_fed']}{' (interrupted)' if r['cancelled'] else ''} | {fmt_ppl(r['ppl'])} | "
                    f"{fmt_ppl(b[0]['ppl']) if b else '-'} | {fmt_ppl(b[-1]['ppl']) if b else '-'} | "
                    f"{r['tokens_per_s']:.1f} |")
            lines.append("")
        pk = {k: v for k, v in data["pk"].items() if k[0] == model}
        for size in sorted({k[2] for k in pk}):
            rows = {k[1]: v for k, v in pk.items() if k[2] == size}
            lengths = sorted({t["length"] for r in rows.values() for t in r["table"]})
            any_r = next(iter(rows.values()))
            lines.append(f"Passkey accuracy (fraction of the 5 digits right, mean over 5 depth bins x "
                         f"{any_r['samples_per_bin']} samples), NS = {any_r['cache']['sinks']}, S = {size}:")
            lines.append("")
            lines.append("| policy | " + " | ".join(f"{n} ({n / size:g}x S)" for n in lengths) + " |")
            lines.append("|---|" + "---|" * len(lengths))
            for tag in sorted(rows, key=key):
                acc = {t["length"]: t["accuracy"] for t in rows[tag]["table"]}
                lines.append(f"| {POLICY_LABEL.get(tag, tag)} | " +
                             " | ".join(fmt_acc(acc.get(n)) for n in lengths) + " |")
            lines.append("")
            lines.append("Key kept: the share of the key's digit tokens that the cache still held when "
                         "the question had been read (mean over samples, layers and KV heads):")
            lines.append("")
            lines.append("| policy | " + " | ".join(f"{n} ({n / size:g}x S)" for n in lengths) + " |")
            lines.append("|---|" + "---|" * len(lengths))
            for tag in sorted(rows, key=key):
                kept = {t["length"]: t.get("key_kept") for t in rows[tag]["table"]}
                lines.append(f"| {POLICY_LABEL.get(tag, tag)} | " +
                             " | ".join(fmt_acc(kept.get(n)) for n in lengths) + " |")
            lines.append("")
            lines.append("By depth bin (0-20% ... 80-100% of the prompt), per length:")
            lines.append("")
            lines.append("| policy | length | " + " | ".join(f"{20 * b}-{20 * b + 20}%" for b in range(5)) + " |")
            lines.append("|---|---|" + "---|" * 5)
            for tag in sorted(rows, key=key):
                for t in rows[tag]["table"]:
                    lines.append(f"| {POLICY_LABEL.get(tag, tag)} | {t['length']} | " +
                                 " | ".join(fmt_acc(a) for a in t["by_bin"]) + " |")
            lines.append("")
    with open(os.path.join(dir_, "tables.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def gp_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def gp_array(name, items):
    out = [f"array {name}[{max(1, len(items))}]"]
    out += [f"{name}[{i + 1}] = {gp_str(v)}" for i, v in enumerate(items)]
    return out


def panel_ranges(name, titles):
    """Consecutive equal titles form one panel: arrays of its first index and its count."""
    first, count = [], []
    for i, t in enumerate(titles):
        if i == 0 or t != titles[i - 1]:
            first.append(str(i + 1))
            count.append("0")
        count[-1] = str(int(count[-1]) + 1)
    return [f"array {name}_first[{max(1, len(first))}]", f"array {name}_count[{max(1, len(count))}]"] + \
        [f"{name}_first[{i + 1}] = {v}" for i, v in enumerate(first)] + \
        [f"{name}_count[{i + 1}] = {v}" for i, v in enumerate(count)]


def write_plot_data(dir_, data):
    """Data files per panel and panels.gp: gnuplot arrays naming each panel's files and labels."""
    pdir = os.path.join(dir_, "plot")
    os.makedirs(pdir, exist_ok=True)
    gp = []

    # Passkey heat maps: one row per (model, S), one panel per policy.
    files, titles, ytics = [], [], []
    groups = sorted({(k[0], k[2]) for k in data["pk"]})
    cols = 0
    for model, size in groups:
        tags = sorted([k[1] for k in data["pk"] if k[0] == model and k[2] == size], key=key)
        lengths = sorted({t["length"] for tag in tags for t in data["pk"][(model, tag, size)]["table"]})
        cols = max(cols, len(tags))
        for tag in tags:
            name = f"pk_{model}_{tag}_S{size}.dat"
            acc = {t["length"]: t["by_bin"] for t in data["pk"][(model, tag, size)]["table"]}
            with open(os.path.join(pdir, name), "w") as f:
                f.write("# depth_bin length_index accuracy (-1: not run)\n")
                for li, n in enumerate(lengths):
                    for b, a in enumerate(acc.get(n, [None] * 5)):
                        f.write(f"{b} {li} {a if a is not None else -1}\n")
            files.append(os.path.join(pdir, name))
            label = POLICY_SHORT.get(tag, POLICY_LABEL.get(tag, tag))
            titles.append(f"{MODEL_SHORT.get(model, model)} {label}, S={size}")
            ytics.append("set ytics (" + ", ".join(f'"{n}" {i}' for i, n in enumerate(lengths)) + ")")
    gp += [f"pk_n = {len(files)}", f"pk_rows = {max(1, len(groups))}", f"pk_cols = {max(1, cols)}"]
    gp += gp_array("pk_file", files) + gp_array("pk_title", titles) + gp_array("pk_ytics", ytics)

    # Perplexity along the stream: one panel per (model, S) with every policy, full included.
    ppl_groups = sorted({(k[0], k[2]) for k in data["ppl"] if k[2] is not None})
    pfiles, ptitles, plabels = [], [], []
    for model, size in ppl_groups:
        tags = [k for k in data["ppl"] if k[0] == model and (k[2] == size or k[1] == "full")]
        for k in sorted(tags, key=lambda k: key(k[1])):
            name = f"ppl_{model}_{k[1]}_S{size}.dat"
            with open(os.path.join(pdir, name), "w") as f:
                f.write("# bucket_middle ppl\n")
                for b in data["ppl"][k]["buckets"]:
                    if b["count"] > 0:
                        f.write(f"{(b['begin'] + b['end']) / 2} {b['ppl']}\n")
            pfiles.append(os.path.join(pdir, name))
            plabels.append(POLICY_LABEL.get(k[1], k[1]))
            ptitles.append(f"{MODEL_LABEL.get(model, model)}, NS=64, S={size}")
    gp += [f"ppl_n = {len(pfiles)}", f"ppl_panels = {len(ppl_groups)}"]
    gp += gp_array("ppl_file", pfiles) + gp_array("ppl_label", plabels) + gp_array("ppl_title", ptitles)
    gp += panel_ranges("ppl", ptitles)

    # Surviving token ages: one panel per (model, S), a histogram per policy (sinks left out).
    age_groups = sorted({(k[0], k[2]) for k in data["slots"]})
    afiles, atitles, alabels = [], [], []
    for model, size in age_groups:
        for tag in sorted([k[1] for k in data["slots"] if k[0] == model and k[2] == size], key=key):
            ages, stream = [], None
            with open(data["slots"][(model, tag, size)]) as f:
                for line in f:
                    if line.startswith("# stream_length"):
                        stream = int(line.split()[2])
                    if line.startswith("#"):
                        continue
                    _layer, _head, index, _position, age, _score = line.split()
                    if int(index) >= 64:  # the sinks are never evicted: not part of the story
                        ages.append(int(age))
            width = max(1, size // 4)
            hist = {}
            for a in ages:
                hist[a // width] = hist.get(a // width, 0) + 1
            name = f"ages_{model}_{tag}_S{size}.dat"
            with open(os.path.join(pdir, name), "w") as f:
                f.write(f"# stream {stream}; bin_start share_of_non_sink_slots (bin width {width})\n")
                for b in range(0, max(hist) + 2 if hist else 1):
                    f.write(f"{b * width} {hist.get(b, 0) / max(1, len(ages))}\n")
            afiles.append(os.path.join(pdir, name))
            alabels.append(POLICY_LABEL.get(tag, tag))
            atitles.append(f"{MODEL_LABEL.get(model, model)}, NS=64, S={size}, after {stream} tokens")
    gp += [f"age_n = {len(afiles)}", f"age_panels = {len(age_groups)}"]
    gp += gp_array("age_file", afiles) + gp_array("age_label", alabels) + gp_array("age_title", atitles)
    gp += panel_ranges("age", atitles)

    with open(os.path.join(pdir, "panels.gp"), "w") as f:
        f.write("\n".join(gp) + "\n")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    dir_, set_name = sys.argv[1], sys.argv[2]
    data = load(dir_)
    write_tables(dir_, set_name, data)
    write_plot_data(dir_, data)


if __name__ == "__main__":
    main()
