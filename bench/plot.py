"""Plot bench/scale.py results: seconds to all RUNNING vs N (operator and baseline), RSS vs N.

    .venv/bin/pip install -e ".[bench]"     # matplotlib, for this script only
    .venv/bin/python bench/plot.py bench/results.jsonl bench/scale.png

Input: one `bench/scale.py --json` line per run (the last line per N wins).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(source: str, target: str) -> int:
    runs: dict[int, dict[str, float]] = {}
    for line in Path(source).read_text().splitlines():
        if line.strip():
            run = json.loads(line)
            runs[int(run["models"])] = run
    ns = sorted(runs)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(ns, [runs[n]["seconds_to_all_running"] for n in ns], "o-", label="operator")
    left.plot(ns, [runs[n].get("baseline_seconds") for n in ns], "s--", label="minimal sequence")
    for n in ns:  # NB: ratios are what compare across runs on a shared machine, so say them
        run = runs[n]
        load = run.get("load_average")
        label = f"{run['ratio']}x" if run.get("ratio") is not None else "no baseline"
        if load:
            label += f", load {load[0]}"
        left.annotate(
            label,
            (n, run["seconds_to_all_running"]),
            textcoords="offset points",
            xytext=(-6, 6),
            ha="right",
        )
    left.set_xlabel("EmbeddingModels (N)")
    left.set_ylabel("seconds to all RUNNING")
    left.legend()
    left.grid(alpha=0.3)
    right.plot(ns, [runs[n]["operator_peak_rss_mib"] for n in ns], "o-", color="tab:red")
    right.axhline(150, color="grey", linestyle=":", label="target at 1000: 150 MiB")
    right.set_xlabel("EmbeddingModels (N)")
    right.set_ylabel("operator peak RSS (MiB)")
    right.legend()
    right.grid(alpha=0.3)
    fig.suptitle("bench/scale.py, local AI Core noop runtime, 2 shared cores")
    fig.tight_layout()
    fig.savefig(target, dpi=100)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:3]))
