"""The faithfulness study's outputs: ``<stem>.json`` (everything), ``<stem>.md`` (one table
per test) and ``<stem>.png`` (the cited / random ratios with their intervals), written
together (``recfeat.atomic.atomic_files``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from recfeat.atomic import atomic_files
from recfeat.jsonable import jsonable

#: the ratio the issue sets as the bar for the deletion test
TARGET = 2.0


def ratio_text(entry: dict[str, Any], test: str) -> str:
    """``2.41x (1.90-3.10)``, or why there is no ratio."""
    ratio = entry.get(f"{test}_ratio")
    if ratio is not None:
        return f"{ratio['ratio']:.2f}x ({ratio['low']:.2f}-{ratio['high']:.2f})"
    random = entry.get(f"{test}_random", {}).get("rate")
    return "inf (random: 0)" if random == 0 else "n/a"


def verdict(ratio: dict[str, Any] | None) -> str:
    """Whether a deletion ratio reaches ``TARGET``, and how sure the interval is of it."""
    if ratio is None:
        return "no ratio"
    if ratio["low"] >= TARGET:
        return "reached (the whole interval is above the target)"
    if ratio["ratio"] >= TARGET:
        return "reached by the point estimate; the interval includes values below the target"
    return "not reached"


def _rate(entry: dict[str, Any], key: str) -> str:
    r = entry.get(key)
    return "n/a" if r is None else f"{r['rate']:.3f} ({r['low']:.3f}-{r['high']:.3f})"


def markdown(result: dict[str, Any]) -> str:
    tests, users, split = result["tests"], result["users"], result["split"]
    lines = [
        f"# Explanation faithfulness: {result['dataset']}",
        "",
        f"Split {split['kind']} (seed {split['seed']}, test fraction {split['test_fraction']}: "
        f"{split['train']} training rows). Per citation size c, a sample of test users (seed "
        f"{users['seed']}) with at least 2c distinct training items: "
        + ", ".join(f"c = {c}: {n} users with >= {users['min_history'][c]} items"
                    for c, n in users["per_cite"].items()) + ". "
        f"Top {tests['k']}; citations of c = {', '.join(map(str, tests['cite']))} history items; "
        f"{tests['random_draws']} random draws per size. CPU: {result['machine']['cpu']} "
        f"({result['machine']['cores']} cores). Intervals: 95% bootstrap over users.",
        "",
        "Deletion: share of recommended items that leave the top k when the cited (or as many "
        "random) history items are removed. Sufficiency: share that stay when only those are kept.",
        "",
        "| model | c | users | deletion cited | deletion random | ratio | sufficiency cited "
        "| sufficiency random | ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["models"]:
        if "skipped" in row:
            lines.append(f"| {row['model']} | - | - | {row['skipped']} | | | | | |")
            continue
        for c, e in row["by_cite"].items():
            if not e.get("users"):
                lines.append(f"| {row['model']} | {c} | 0 | no citations | | | | | |")
                continue
            lines.append(
                f"| {row['model']} | {c} | {e['users']} | {_rate(e, 'deletion_cited')} | "
                f"{_rate(e, 'deletion_random')} | {ratio_text(e, 'deletion')} | "
                f"{_rate(e, 'sufficiency_cited')} | {_rate(e, 'sufficiency_random')} | "
                f"{ratio_text(e, 'sufficiency')} |"
            )
    lines += ["", f"Target: deletion ratio >= {TARGET:g}x for content and ease-text.", ""]
    for row in result["models"]:
        if "skipped" in row or row["model"] not in ("content", "ease-text"):
            continue
        for c, e in row["by_cite"].items():
            lines.append(f"- {row['model']}, c = {c}: {ratio_text(e, 'deletion')}: "
                         f"{verdict(e.get('deletion_ratio'))}")  # fmt: skip
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], path: Path) -> None:
    """Cited / random ratio per model and citation size, deletion and sufficiency."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in result["models"] if "skipped" not in r]
    cites = [str(c) for c in result["tests"]["cite"]]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    width = 0.8 / max(len(cites), 1)
    for ax, test in zip(axes, ("deletion", "sufficiency"), strict=True):
        for n, c in enumerate(cites):
            xs, ys, err = [], [], [[], []]
            for m, row in enumerate(rows):
                ratio = row["by_cite"].get(c, {}).get(f"{test}_ratio")
                if ratio is None:
                    continue
                xs.append(m + (n - (len(cites) - 1) / 2) * width)
                ys.append(ratio["ratio"])
                err[0].append(max(ratio["ratio"] - ratio["low"], 0))
                err[1].append(max(ratio["high"] - ratio["ratio"], 0))
            ax.bar(xs, ys, width, yerr=err, capsize=3, label=f"c = {c}")
        ax.axhline(1.0, color="grey", lw=0.8)
        if test == "deletion":
            ax.axhline(TARGET, color="red", ls="--", lw=0.8, label=f"target {TARGET:g}x")
        ax.set_xticks(range(len(rows)), [r["model"] for r in rows], rotation=20)
        ax.set_ylabel("cited / random")
        ax.set_title(f"{test}: {'left' if test == 'deletion' else 'stayed in'} the top "
                     f"{result['tests']['k']}")  # fmt: skip
        ax.legend(fontsize=8)
    fig.suptitle(f"Explanation faithfulness, {result['dataset']} (95% bootstrap intervals)")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    plt.close(fig)


def write_report(result: dict[str, Any], out: str | Path) -> list[Path]:
    """Write ``out`` + .json / .md / .png (``out``: a path stem, e.g. results/explain)."""
    out = Path(out)
    stem = out.with_suffix("") if out.suffix in (".json", ".md", ".png") else out
    paths = [stem.with_name(stem.name + ext) for ext in (".json", ".md", ".png")]
    text = json.dumps(jsonable(result), indent=2) + "\n"
    with atomic_files(paths) as temps:
        temps[paths[0]].write_text(text, encoding="utf-8")
        temps[paths[1]].write_text(markdown(result), encoding="utf-8")
        plot(result, temps[paths[2]])
    return paths
