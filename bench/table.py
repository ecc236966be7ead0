"""The README's benchmark table, in Markdown, from a results file (default ``bench/results/latest.json``).

    python bench/table.py [results.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"


def table(document: dict) -> str:
    info = document["environment"]
    lines = [
        f"Run {info['started']}, {info['cores']} cores, load average {info['load_average_before'][0]:.1f} at the "
        f"start, {info['duration_s']:.1f} s per run{' (--quick)' if info['quick'] else ''}"
        + (f", {info['took_s'] // 60} min {info['took_s'] % 60} s in all" if "took_s" in info else "")
        + (f", SQLite synchronous={info['sqlite_synchronous']}" if "sqlite_synchronous" in info else "")
        + "; generator on the same machine. `ceil` is the share of the constant route's requests/s in the same "
        "configuration.",
        "",
        "| store | defaults | workers | clients | workload | req/s | ceil | p50 ms | p95 ms | p99 ms | errors | peak RSS MiB |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in document["runs"]:  # the scale test's rows are among them (its JSON section repeats them)
        fraction = f"{row['ceiling_fraction'] * 100:.0f}%" if row.get("ceiling_fraction") else "-"
        lines.append(
            f"| {row['store']} | {row['defaults']} | {row['workers']} | {row['clients']} | {row['workload']} | "
            f"{row['requests_per_second']:.0f} | {fraction} | {row['p50_ms']:.2f} | {row['p95_ms']:.2f} | "
            f"{row['p99_ms']:.2f} | {row['errors']} | {row.get('peak_rss_mib', 0):.0f} |")
    ratios = [row for row in document["scale"] if "p95_ratio" in row]
    if ratios:
        lines.append("")
        lines += [f"- {row['store']}: {row['workload']}: p95 at {max(row['counts'])} stored requests / at "
                  f"{min(row['counts'])} = {row['p95_ratio']:.2f}" for row in ratios]
    return "\n".join(lines)


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS
    print(table(json.loads(path.read_text())))
