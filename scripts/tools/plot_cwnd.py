#!/usr/bin/env python3
"""Draws cwnd, ssthresh and flight size over time from the CSV traces that
`cc-report --trace-dir DIR` writes: one line chart per algorithm.

usage: plot_cwnd.py OUTPUT.png TRACE.csv...
"""
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path):
    t, cwnd, ssthresh, flight = [], [], [], []
    with open(path) as f:
        for row in csv.DictReader(f):
            t.append(float(row["time_s"]))
            cwnd.append(int(row["cwnd_bytes"]) / 1000)
            ssthresh.append(int(row["ssthresh_bytes"]) / 1000 if row["ssthresh_bytes"] else float("nan"))
            flight.append(int(row["flight_bytes"]) / 1000)
    return t, cwnd, ssthresh, flight


def main():
    out, traces = sys.argv[1], sys.argv[2:]
    fig, axes = plt.subplots(len(traces), 1, figsize=(10, 3.6 * len(traces)), sharex=True)
    if len(traces) == 1:
        axes = [axes]
    for ax, path in zip(axes, traces):
        name = os.path.basename(path).removeprefix("cwnd-").removesuffix(".csv")
        t, cwnd, ssthresh, flight = load(path)
        ax.plot(t, cwnd, label="cwnd", linewidth=1.2)
        ax.plot(t, ssthresh, label="ssthresh", linewidth=1.0, linestyle="--")
        ax.plot(t, flight, label="flight (pipe)", linewidth=0.6, alpha=0.6)
        ax.set_title(f"{name}: 100 Mbit/s, 20 ms RTT, drop-tail queue of 1 BDP (250 KB), no random loss")
        ax.set_ylabel("KB")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper right")
    axes[-1].set_xlabel("simulated seconds")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"plot written to {out}")


if __name__ == "__main__":
    main()
