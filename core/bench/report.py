"""Benchmark reports: results.json, results.md and PNG plots, written into one folder at once.

A report folder carries a marker in its results.json, so ``--force`` replaces an earlier
benchmark report but never a folder that holds something else.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from recfeat.atomic import atomic_dir
from recfeat.errors import UsageError
from recfeat.jsonable import jsonable

MARKER = "recfeat-bench"
SCHEMA_VERSION = 1
RANDOM_LABEL = "random weights"


# -- the output folder ---------------------------------------------------------------------
def check_out_dir(out: str | Path, *, force: bool) -> Path:
    """Refuse an existing ``out`` unless ``force``, and even then unless it is a bench report."""
    out = Path(out)
    if not out.exists():
        return out
    if not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder path")
    if not force:
        raise UsageError(
            f"output folder {out} already exists; pass --force to replace it or choose another --out"
        )
    entries = [p for p in out.iterdir() if not p.name.startswith(".")]
    if entries and not _is_bench_folder(out):
        raise UsageError(
            f"output folder {out} is not from a recfeat benchmark run (no results.json marked "
            f"{MARKER!r}); --force only replaces benchmark reports: choose another --out"
        )
    return out


def _is_bench_folder(path: Path) -> bool:
    try:
        data = json.loads((path / "results.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("marker") == MARKER


def write_report(out: str | Path, results: dict[str, Any], *, force: bool = False) -> Path:
    """Write results.json, results.md and the plots for ``results`` into ``out`` atomically."""
    out = check_out_dir(out, force=force)
    results = {"marker": MARKER, "schema": SCHEMA_VERSION, **results}
    with atomic_dir(out, force=force) as tmp:
        (tmp / "results.json").write_text(json.dumps(jsonable(results), indent=2, allow_nan=False) + "\n")
        (tmp / "results.md").write_text(render_markdown(results))
        for name, fig in make_plots(results).items():
            fig.savefig(tmp / name, dpi=110, bbox_inches="tight")
            _close(fig)
    return out


# -- markdown ------------------------------------------------------------------------------
def _fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    return str(value)


TableFn = Callable[[Sequence[str], Sequence[Sequence[str]]], str]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _environment_lines(env: dict[str, Any]) -> list[str]:
    libs = env.get("libraries") or {}
    versions = ", ".join(f"{k} {v}" for k, v in libs.items() if v)
    return [
        f"- date: {env.get('date')}",
        f"- machine: {env.get('cpu_model')} ({env.get('cpu_count')} logical CPUs, "
        f"{env.get('ram_gib')} GiB RAM), flags: {', '.join(env.get('cpu_flags') or []) or 'none'}",
        f"- device: {env.get('device')}" + (f" ({env['gpu']})" if env.get("gpu") else ""),
        f"- threads: {env.get('threads')}, 1-minute load average at start: "
        f"{env.get('load_average_1m')}",
        f"- versions: {versions}",
    ]


def render_markdown(results: dict[str, Any], table: TableFn | None = None) -> str:
    """The human-readable report: headline, environment, one table per workload.
    ``table(header, rows) -> str`` lays out each table (default: a markdown table; the CLI
    passes one fitted to the terminal)."""
    table = table or _table
    mode = results.get("mode", "throughput")
    title = f"# recfeat bench {mode}: {results.get('encoder')}"
    if results.get("random_weights"):
        title += f" ({RANDOM_LABEL})"
    parts = [title, ""]
    if results.get("command"):
        parts += [f"Command: `{results['command']}`", ""]
    parts += _environment_lines(results.get("environment") or {})
    parts.append("")
    for note in results.get("notes") or []:
        parts.append(f"> {note}")
    if results.get("notes"):
        parts.append("")
    if mode == "accuracy":
        parts.append(_accuracy_table(results, table))
    else:
        parts += _summary_sections(results, table)
        for workload in ("fixed", "corpus"):
            rows = [r for r in results.get("rows", []) if r.get("workload") == workload]
            if rows:
                parts.append(_throughput_table(rows, workload, results, table))
                parts.append("")
    failed = results.get("failed") or []
    if failed:
        parts += ["", "Backends that could not run:", ""]
        parts += [f"- {f['backend']}: {f['error']}" for f in failed]
    missing = results.get("not_installed") or []
    if missing:
        parts += ["", "Peers not installed here (not measured):", ""]
        parts += [f"- {m['backend']}: {m['reason']}" for m in missing]
    return "\n".join(parts).rstrip() + "\n"


def _pct(value: Any) -> str:
    return "-" if not isinstance(value, (int, float)) or not math.isfinite(value) else f"{value * 100:.0f}%"


def headline_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per backend: its corpus row where there is one, else its fixed row at the
    target shape, else its fastest fixed row."""
    from recfeat.bench.summary import TARGET_SHAPE

    best: dict[str, dict[str, Any]] = {}
    for r in rows:
        if not isinstance(r.get("seq_per_s"), (int, float)) or "backend" not in r:
            continue  # a row that failed, or a hand-made one without a backend
        prev = best.get(r["backend"])

        def rank(x):
            return (x.get("workload") == "corpus", (x.get("batch"), x.get("seq")) == TARGET_SHAPE,
                    x.get("tokens_per_s") or 0)  # fmt: skip

        if prev is None or rank(r) > rank(prev):
            best[r["backend"]] = r
    return sorted(best.values(), key=lambda r: -(r.get("seq_per_s") or 0))


def _summary_sections(results: dict[str, Any], table: TableFn = _table) -> list[str]:
    """Targets, ceilings and the one table of every path and peer."""
    parts: list[str] = []
    targets = results.get("targets") or []
    if targets:
        body = [[t["target"], _fmt(t["goal"], 2), _fmt(t.get("value"), 2),
                 "-" if t.get("met") is None else ("met" if t["met"] else "MISSED"),
                 "-" if t.get("margin") is None else f"{t['margin'] * 100:+.0f}%", t.get("detail", "")]
                for t in targets]  # fmt: skip
        parts += ["## Targets (this run)", "",
                  table(["target", "goal", "value", "status", "margin", "path"], body), ""]
    gemm = results.get("ceilings") or {}
    if gemm.get("kernels"):
        best = gemm.get("ceilings") or {}
        body = [[k["precision"], k["kernel"], _fmt(k["gflops"], 0),
                 " / ".join(_fmt(g, 0) for g in k.get("gflops_runs") or [k["gflops"]]),
                 "ceiling" if best.get(k["precision"], {}).get("kernel") == k["kernel"] else ""]
                for k in gemm["kernels"]]  # fmt: skip
        body += [["-", f"{f['kernel']} (failed: {f['error']})", "-", "-", ""] for f in gemm.get("failed") or []]
        when = "before and after the paths, the faster counts; " if gemm.get("runs") == 2 else ""
        parts += [f"## GEMM ceilings ({gemm.get('size')}^3, threads {gemm.get('threads') or 'default'}, "
                  f"{when}best of {gemm.get('repeats')})", "",
                  table(["precision", "kernel", "GFLOP/s (GOP/s int8)", "each run", ""], body), ""]
    shape = results.get("model_shape") or {}
    if shape.get("gflop_per_128_tokens"):
        parts += [f"Model FLOPs from its config: {shape['gflop_per_128_tokens']:.3f} GFLOP per "
                  f"128-token sequence ({shape.get('layers')} layers, hidden {shape.get('hidden')}, "
                  f"FFN {shape.get('intermediate')}; 2 x {shape.get('matmul_params'):,} matmul "
                  "weights x tokens + attention 4 x layers x hidden x tokens^2).", ""]
    rows = headline_rows(results.get("rows") or [])
    if rows:
        header = ["backend", "kind", "precision", "workload", "seq/s", "tokens/s", "cos mean",
                  "cos min", "% of ceiling", "corpus/fixed tok/s", "x vs best peer cos>=0.999",
                  "x vs fastest peer", "gate"]
        body = []
        for r in rows:
            work = "corpus" if r.get("workload") == "corpus" else f"{r.get('batch')}x{r.get('seq')}"
            gate = "-" if r.get("gate_passed") is None else ("pass" if r["gate_passed"] else
                                                              "fail: " + "; ".join(r.get("gate_why") or []))
            body.append([
                r["backend"], r.get("kind", "-"), str(r.get("precision", "-")), work,
                _fmt(r.get("seq_per_s")), _fmt(r.get("tokens_per_s"), 0),
                _fmt(r.get("cosine_mean"), 5), _fmt(r.get("cosine_min"), 5),
                _pct(r.get("fraction_of_ceiling")), _pct(r.get("fixed_ratio")),
                _fmt(r.get("vs_quality_peer"), 2), _fmt(r.get("vs_any_peer"), 2), gate,
            ])  # fmt: skip
        quality = next((r.get("quality_peer") for r in rows if r.get("quality_peer")), None)
        fastest = next((r.get("any_peer") for r in rows if r.get("any_peer")), None)
        parts += ["## Every path and peer (corpus where measured, else fixed shape)", "",
                  table(header, body), "",
                  f"% of ceiling: useful model FLOP/s (padding excluded) over the GEMM ceiling of "
                  f"the path's precision; corpus/fixed: corpus tokens/s over the same backend's "
                  f"fixed-shape tokens/s; peers compared on the same workload (fastest peer with "
                  f"mean cosine >= 0.999: {quality or '-'}; fastest at any quality: {fastest or '-'}).",
                  ""]  # fmt: skip
    parts += _gate_section(results.get("gate") or {}, table)
    return parts


def _gate_section(gate: dict[str, Any], table: TableFn = _table) -> list[str]:
    """Each gated backend's metrics, its drop against the reference and the paired 95%
    interval of that drop (the gate passes a metric when the interval's upper end is within
    max-drop)."""
    backends = gate.get("backends") or {}
    if not backends:
        return []
    body = []
    for name, g in backends.items():
        for metric, value in (g.get("metrics") or {}).items():
            iv = (g.get("intervals") or {}).get(metric)
            shown = ("-" if not iv else f"{iv['drop'] * 100:+.2f}% ({iv['low'] * 100:+.2f}% .. "
                     f"{iv['high'] * 100:+.2f}%, {iv['units']} units)")  # fmt: skip
            body.append([name, metric, _fmt(value, 4), shown,
                         "pass" if g.get("passes") else "fail"])  # fmt: skip
    notes = "; ".join(gate.get("notes") or [])
    return ["## Downstream gate", "", notes + ".", "",
            table(["backend", "metric", "value", "drop vs reference (95% CI)", "backend verdict"], body),
            "", f"A backend passes when its mean cosine is >= {gate.get('min_cosine')} and, for "
            f"every metric, the upper end of the paired-bootstrap 95% interval of its drop (test "
            f"users or test pairs resampled together for both sides) is within max-drop "
            f"{(gate.get('max_drop') or 0) * 100:g}%: the drop must be shown within it, not only "
            "estimated within it.", ""]  # fmt: skip


def _peer_names(rows: Sequence[dict[str, Any]]) -> list[str]:
    seen: list[str] = []
    for r in rows:
        for peer in r.get("vs_peers") or {}:
            if peer not in seen:
                seen.append(peer)
    return seen


def _throughput_table(rows: Sequence[dict[str, Any]], workload: str, results: dict,
                      table: TableFn = _table) -> str:  # fmt: skip
    peers = _peer_names(rows)
    if workload == "fixed":
        heading = "## Fixed shapes (synthetic token ids, model only)"
        shape_cols = ["batch", "seq"]
    else:
        corpus = results.get("corpus") or {}
        heading = (
            f"## Real corpus: {corpus.get('name', '?')}, {corpus.get('texts', '?')} texts, "
            f"mean {_fmt(corpus.get('mean_tokens'))} tokens (tokenisation included)"
        )
        shape_cols = ["batching"]
    header = [
        "backend", "kind", *shape_cols, "median ms", "p95 ms", "seq/s", "tokens/s",
        "peak RSS MiB", "cos mean", "cos min", *[f"x vs {p}" for p in peers],
    ]
    body = []
    for r in rows:
        shape = (
            [str(r.get("batch")), str(r.get("seq"))] if workload == "fixed"
            else [str(r.get("batching", "-"))]
        )
        mem = r.get("peak_gpu_mb") if r.get("peak_gpu_mb") is not None else r.get("peak_rss_mb")
        body.append(
            [
                r["backend"], r.get("kind", "-"), *shape,
                _fmt(r.get("median_ms")), _fmt(r.get("p95_ms")), _fmt(r.get("seq_per_s")),
                _fmt(r.get("tokens_per_s"), 0), _fmt(mem, 0),
                _fmt(r.get("cosine_mean"), 5), _fmt(r.get("cosine_min"), 5),
                *[_fmt((r.get("vs_peers") or {}).get(p), 2) for p in peers],
            ]
        )
    note = (
        "\n\nseq/s and tokens/s come from the median call; `x vs PEER` is recfeat seq/s over "
        "the peer's on the same workload; cosine is against the reference backend "
        f"({results.get('reference') or '-'})."
    )
    return heading + "\n\n" + table(header, body) + note


def _accuracy_table(results: dict[str, Any], table: TableFn = _table) -> str:
    rows = results.get("rows", [])
    metric_names: list[str] = []
    for r in rows:
        for key in r.get("metrics") or {}:
            if key not in metric_names:
                metric_names.append(key)
    header = ["backend", "model", "seq/s", "cos mean", "cos min", *metric_names, "drop", "flag"]
    body = []
    for r in rows:
        metrics = r.get("metrics") or {}
        body.append(
            [
                r["backend"], r.get("model", "-"), _fmt(r.get("seq_per_s")),
                _fmt(r.get("cosine_mean"), 5), _fmt(r.get("cosine_min"), 5),
                *[_fmt(metrics.get(m), 4) for m in metric_names],
                "-" if r.get("worst_drop") is None else f"{r['worst_drop'] * 100:.2f}%",
                "DROP > max" if r.get("flagged") else "",
            ]
        )
    split = results.get("split")
    head = (
        f"## Accuracy per backend (split {split}, reference {results.get('reference')}, "
        f"max drop {results.get('max_drop', 0) * 100:.2f}%)"
    )
    return head + "\n\n" + table(header, body)


# -- plots ---------------------------------------------------------------------------------
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers
    import matplotlib.pyplot as plt

    return plt


def _close(fig) -> None:
    _pyplot().close(fig)


def make_plots(results: dict[str, Any]) -> dict[str, Any]:
    """Figures keyed by file name: throughput by backend and batch, or the Pareto plot."""
    suffix = f" ({RANDOM_LABEL})" if results.get("random_weights") else ""
    if results.get("mode") == "accuracy":
        return {"pareto.png": _pareto_plot(results, suffix)}
    figs = {}
    rows = results.get("rows", [])
    fixed = [r for r in rows if r.get("workload") == "fixed"]
    corpus = [r for r in rows if r.get("workload") == "corpus"]
    if fixed:
        figs["throughput_fixed.png"] = _fixed_plot(fixed, results, suffix)
    if corpus:
        figs["throughput_corpus.png"] = _corpus_plot(corpus, results, suffix)
    if any(r.get("cosine_mean") is not None for r in headline_rows(rows)):
        figs["speed_quality.png"] = speed_quality_plot(results, suffix)
    return figs


#: Downstream metrics plotted when the gate's rows carry them (column -> axis label).
GATE_COLUMNS = {"gate_ndcg10": "content NDCG@10 (gate split)", "gate_rmse": "ridge RMSE (gate split)"}


def speed_quality_plot(results: dict[str, Any], suffix: str = ""):
    """seq/s against mean cosine to the reference, and against each downstream metric the
    rows carry: one panel each, recfeat blue, peers grey, the Pareto front dashed."""
    plt = _pyplot()
    rows = [r for r in headline_rows(results.get("rows") or []) if r.get("seq_per_s")]
    panels = [("cosine_mean", "mean cosine to the reference")]
    panels += [(c, label) for c, label in GATE_COLUMNS.items() if any(_finite(r.get(c)) for r in rows)]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 5), squeeze=False)
    for ax, (column, label) in zip(axes[0], panels, strict=True):
        pts = [(r, r["seq_per_s"], r[column]) for r in rows if _finite(r.get(column))]
        for r, x, y in pts:
            ax.scatter(x, y, color="tab:blue" if r.get("kind") == "recfeat" else "tab:gray")
            ax.annotate(r["backend"], (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        sign = -1.0 if column == "gate_rmse" else 1.0  # lower RMSE is better
        front = pareto_front([(x, sign * y) for _, x, y in pts])
        if len(front) > 1:
            ax.plot([pts[i][1] for i in front], [pts[i][2] for i in front], "--", color="tab:green",
                    label="Pareto front")
            ax.legend(fontsize=7)
        ax.set_xlabel("sequences / s (corpus where measured, else fixed shape)")
        ax.set_ylabel(label)
        ax.ticklabel_format(axis="y", useOffset=False)  # cosines differ in the 5th decimal
    fig.suptitle(f"{results.get('encoder')}: speed vs quality{suffix} (blue: recfeat, grey: peers)")
    fig.tight_layout()
    return fig


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _fixed_plot(rows, results, suffix):
    plt = _pyplot()
    seqs = sorted({r["seq"] for r in rows})
    backends = list(dict.fromkeys(r["backend"] for r in rows))
    fig, axes = plt.subplots(1, len(seqs), figsize=(4.5 * len(seqs), 4), squeeze=False)
    for ax, seq in zip(axes[0], seqs, strict=True):
        batches = sorted({r["batch"] for r in rows if r["seq"] == seq})
        width = 0.8 / max(len(backends), 1)
        for i, backend in enumerate(backends):
            values = []
            for b in batches:
                match = [r for r in rows if r["seq"] == seq and r["batch"] == b and r["backend"] == backend]
                values.append(match[0]["seq_per_s"] if match else 0.0)
            xs = [j + i * width for j in range(len(batches))]
            ax.bar(xs, values, width, label=backend)
        ax.set_xticks([j + width * (len(backends) - 1) / 2 for j in range(len(batches))])
        ax.set_xticklabels([str(b) for b in batches])
        ax.set_xlabel("batch size")
        ax.set_ylabel("sequences / s")
        ax.set_title(f"seq len {seq}")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"{results.get('encoder')} throughput by backend and batch{suffix}")
    fig.tight_layout()
    return fig


def _corpus_plot(rows, results, suffix):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.5))
    labels = [r["backend"] for r in rows]
    values = [r["seq_per_s"] for r in rows]
    colors = ["tab:blue" if r.get("kind") == "recfeat" else "tab:gray" for r in rows]
    ax.barh(labels, values, color=colors)
    ax.invert_yaxis()
    ax.set_xlabel("sequences / s (tokenisation included)")
    corpus = (results.get("corpus") or {}).get("name", "corpus")
    ax.set_title(f"{results.get('encoder')} on {corpus}{suffix}\nblue: recfeat, grey: peers")
    fig.tight_layout()
    return fig


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of points not dominated (higher speed and higher accuracy are better)."""
    front = []
    for i, (s, a) in enumerate(points):
        dominated = any(
            (s2 >= s and a2 >= a) and (s2 > s or a2 > a) for j, (s2, a2) in enumerate(points) if j != i
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def _pareto_plot(results, suffix):
    plt = _pyplot()
    rows = [r for r in results.get("rows", []) if r.get("seq_per_s")]
    metric = results.get("pareto_metric")
    fig, ax = plt.subplots(figsize=(7, 5))
    if rows:
        models = list(dict.fromkeys(r.get("model") for r in rows))
        for model in models:
            sub = [r for r in rows if r.get("model") == model]
            pts = [(r["seq_per_s"], _accuracy_of(r, metric)) for r in sub]
            pts_ok = [(i, p) for i, p in enumerate(pts) if p[1] is not None]
            for i, (x, y) in pts_ok:
                ax.scatter(x, y, color="tab:red" if sub[i].get("flagged") else "tab:blue")
                ax.annotate(sub[i]["backend"], (x, y), fontsize=7, xytext=(3, 3),
                            textcoords="offset points")
            clean = [p for _, p in pts_ok]
            front = pareto_front(clean)
            if len(front) > 1:
                ax.plot([clean[i][0] for i in front], [clean[i][1] for i in front], "--",
                        label=f"Pareto front ({model})")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    ax.set_xlabel("sequences / s")
    ax.set_ylabel(metric or "cosine to reference")
    ax.set_title(f"{results.get('encoder')}: speed vs accuracy{suffix}\nred: drop above max")
    fig.tight_layout()
    return fig


def _accuracy_of(row: dict[str, Any], metric: str | None) -> float | None:
    if metric and metric != "cosine_mean":
        value = (row.get("metrics") or {}).get(metric)
    else:
        value = row.get("cosine_mean")
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value
