#!/usr/bin/env python3
"""Draws the figures `scripts/bench` recorded in its CSV as bar charts: one
PNG per section, one panel per unit, bars grouped by figure with one bar per
server (ustack, kernel, smoltcp, ...), so the implementations stand side by
side.

The CSV has the header section,name,value,unit. A name is "SERVER FIGURE":
its first word names what was measured (ustack, ustack-no-offload, kernel,
smoltcp, ustack/kernel for a ratio, ...) and the rest the figure ("into
server", "connections/s"). A name of one word is a figure of its own.
Values that are not numbers are skipped.

usage: plot_bench.py BENCH.csv OUTPUT_DIR
"""
import csv
import os
import re
import sys
from collections import OrderedDict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# Servers in this order first, the others after them as they come.
ORDER = ["ustack", "ustack-no-offload", "ustack-tun", "kernel", "smoltcp"]


def load(path):
    """{section: {unit: [(server, figure, value)]}} in file order."""
    sections = OrderedDict()
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                value = float(row["value"])
            except (TypeError, ValueError):
                continue
            name = (row.get("name") or "").strip()
            server, _, figure = name.partition(" ")
            if not figure:
                server, figure = "", name
            unit = (row.get("unit") or "").strip()
            sections.setdefault(row["section"], OrderedDict()).setdefault(unit, []).append(
                (server, figure, value)
            )
    return sections


def ordered(items):
    seen = list(OrderedDict.fromkeys(items))
    return sorted(seen, key=lambda s: (ORDER.index(s) if s in ORDER else len(ORDER), seen.index(s)))


def label(y):
    return f"{y:,.0f}" if abs(y) >= 1000 else f"{y:.3g}"


def draw(section, units, out):
    fig, axes = plt.subplots(len(units), 1, figsize=(12, 3.8 * len(units)), squeeze=False)
    # One colour per server across the section's panels.
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colours = {}
    for rows in units.values():
        for server in ordered(s for s, _, _ in rows):
            colours.setdefault(server, palette[len(colours) % len(palette)])
    for ax, (unit, rows) in zip(axes[:, 0], units.items()):
        figures = list(OrderedDict.fromkeys(fig_ for _, fig_, _ in rows))
        servers = ordered(s for s, _, _ in rows)
        width = 0.8 / max(len(servers), 1)
        for k, server in enumerate(servers):
            # The last value recorded wins if a figure was recorded twice.
            values = {fig_: v for s, fig_, v in rows if s == server}
            xs = [i + (k - (len(servers) - 1) / 2) * width for i, f in enumerate(figures) if f in values]
            ys = [values[f] for f in figures if f in values]
            bars = ax.bar(xs, ys, width, label=server or "(figure)", color=colours[server])
            ax.bar_label(bars, labels=[label(y) for y in ys], fontsize=7, padding=1)
        ax.set_xticks(range(len(figures)))
        ax.set_xticklabels(figures, rotation=15 if len(figures) > 4 else 0, fontsize=8)
        ax.set_ylabel(unit)
        ax.set_title(f"{section}: {unit}")
        if min(v for _, _, v in rows) >= 0:
            ax.set_ylim(bottom=0)
        if unit == "x":
            # A ratio of 1: as fast as the other.
            ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
        if len(servers) > 1 or servers[0]:
            ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    path, outdir = sys.argv[1], sys.argv[2]
    os.makedirs(outdir, exist_ok=True)
    sections = load(path)
    if not sections:
        sys.exit(f"error: no figures in {path}")
    for section, units in sections.items():
        out = os.path.join(outdir, "bench-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", section) + ".png")
        draw(section, units, out)
        print(out)


if __name__ == "__main__":
    main()
