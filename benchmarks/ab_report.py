"""The before/after table of ``benchmarks/ab_refactor.sh`` (issue 20: no figure worse).

``meta`` records the machine (CPU model, the ISA flags that change kernels: AVX-512 bf16 /
VNNI, AMX, AVX-VNNI), the load, and both trees (before: the commit; after: HEAD plus a
content hash of core/, plugins/ and exporters/, taken at the start and at the end so a tree
edited during the run is caught). ``report`` turns the raw JSON lines of ``ab_measure.py``
into ``STEM.md`` (the interleaved table: every round's value for each side, the
after/before ratio of the medians, the range of the per-round paired ratios and a verdict),
``STEM.json`` (all of it, raw lines included) and ``STEM.png`` (a bar chart of the paired
ratios, direction-adjusted so that right of 1 is better).

    python benchmarks/ab_report.py meta --phase start --meta RUN/meta.json --before-dir D ...
    python benchmarks/ab_report.py report --raw RUN/raw.jsonl --meta RUN/meta.json --out STEM
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

KERNEL_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx512_fp16", "avx_vnni",
                "amx_bf16", "amx_int8", "amx_tile")  # fmt: skip
TREES = ("core", "plugins", "exporters")


# -- meta ------------------------------------------------------------------------------------
def cpuinfo() -> dict:
    model, vendor, flags = None, None, set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key == "model name" and model is None:
                model = value
            elif key == "vendor_id" and vendor is None:
                vendor = value
            elif key == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    mem = None
    try:
        mem = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    return {"cpu": model, "vendor": vendor, "cpus": os.cpu_count(), "memory_gib": mem,
            "kernel_flags": [f for f in KERNEL_FLAGS if f in flags],
            "all_avx512_amx_flags": sorted(f for f in flags if f.startswith(("avx512", "amx"))),
            "kernel": platform.release(), "python": platform.python_version()}  # fmt: skip


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in (
        "torch",
        "transformers",
        "tokenizers",
        "ray",
        "numpy",
        "pyarrow",
        "uvicorn",
        "fastapi",
    ):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def git(repo: str, *args: str) -> str:
    try:
        return subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True,
                              check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return ""


def tree_hash(root: str) -> str:
    """sha256 over the paths and bytes of every file in core/, plugins/, exporters/
    (tracked or not, caches skipped): what the side actually imports."""
    h = hashlib.sha256()
    for top in TREES:
        base = Path(root) / top
        for path in sorted(base.rglob("*")):
            if "__pycache__" in path.parts or not path.is_file():
                continue
            h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def tree_state(root: str) -> dict:
    status = git(root, "status", "--porcelain", "--", *TREES)
    return {"head": git(root, "rev-parse", "HEAD"),
            "subject": git(root, "log", "-1", "--format=%s")[:140],
            "changed_files": len([ln for ln in status.splitlines() if ln.strip()]),
            "content_hash": tree_hash(root)}  # fmt: skip


def meta(args) -> None:
    path = Path(args.meta)
    data = json.loads(path.read_text()) if path.exists() else {}
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    if args.phase == "start":
        fp32 = None
        try:
            from recfeat.machine import fp32_gemm_default

            fp32 = fp32_gemm_default()
        except Exception:  # noqa: BLE001 - informational
            pass
        data = {
            "started": now, "machine": {**cpuinfo(), "fp32_gemm_default": fp32},
            "load_avg_start": [round(x, 2) for x in os.getloadavg()], "versions": versions(),
            "before": {"ref": args.before_ref, "dir": args.before_dir, **tree_state(args.before_dir)},
            "after": {"dir": args.after_dir, "start": tree_state(args.after_dir)},
            "setup_s": args.setup_s, "settings": args.settings,
            "command": os.environ.get("AB_COMMAND", "bash benchmarks/ab_refactor.sh"),
        }  # fmt: skip
    else:
        data["ended"] = now
        data["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
        data.setdefault("after", {})["end"] = tree_state(args.after_dir)
    path.write_text(json.dumps(data, indent=1) + "\n")


# -- report ----------------------------------------------------------------------------------
def read_raw(path: Path) -> list[dict]:
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            line = line.strip()
            if line:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    rows.append({"error": f"unreadable line: {line[:200]}"})
    return rows


def tolerance(unit: str, tol: float) -> float:
    return 2 * tol if unit == "ms" else tol  # single-request latencies: fewer samples, noisier


def gain(before: float, after: float, better: str) -> float | None:
    """>1: after is better. None when a side is 0 or missing."""
    if before is None or after is None or before <= 0 or after <= 0:
        return None
    return after / before if better == "higher" else before / after


def summarize(rows: list[dict], tol: float) -> list[dict]:
    table: dict[tuple[str, str], dict] = {}
    for row in rows:
        for f in row.get("figures", []):
            key = (row["bench"], f["name"])
            entry = table.setdefault(key, {"bench": row["bench"], "figure": f["name"],
                                           "unit": f["unit"], "better": f["better"],
                                           "before": {}, "after": {}})  # fmt: skip
            if f["value"] is not None:
                entry[row["side"]][row["round"]] = f["value"]
    out = []
    for entry in table.values():
        b, a = entry["before"], entry["after"]
        rounds = sorted(set(b) & set(a))
        pairs = [gain(b[r], a[r], entry["better"]) for r in rounds]
        raw_pairs = [a[r] / b[r] if b[r] else None for r in rounds]
        mb = statistics.median(b.values()) if b else None
        ma = statistics.median(a.values()) if a else None
        t = tolerance(entry["unit"], tol)
        if entry["unit"] == "count":  # failures: any more is worse
            verdict = ("WORSE" if ma is not None and mb is not None and ma > mb else
                       "better" if ma is not None and mb is not None and ma < mb else "same")  # fmt: skip
            med_gain = None
        else:
            valid = [p for p in pairs if p is not None]
            med_gain = statistics.median(valid) if valid else None
            verdict = ("n/a" if med_gain is None else "WORSE" if med_gain < 1 - t
                       else "better" if med_gain > 1 + t else "within noise")  # fmt: skip
        entry.update(
            rounds=rounds, paired_gain=[None if p is None else round(p, 4) for p in pairs],
            paired_ratio=[None if p is None else round(p, 4) for p in raw_pairs],
            median_before=mb, median_after=ma,
            ratio_of_medians=round(ma / mb, 4) if mb and ma is not None else None,
            median_gain=None if med_gain is None else round(med_gain, 4),
            pairs_worse=sum(1 for p in pairs if p is not None and p < 1), tol=t, verdict=verdict,
        )  # fmt: skip
        out.append(entry)
    return out


def fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def per_round(values: dict) -> str:
    return ", ".join(fmt(values[r]) for r in sorted(values)) or "-"


def side_paths(rows: list[dict]) -> dict:
    out: dict[str, set] = {"before": set(), "after": set()}
    for row in rows:
        if "where" in row and row.get("side") in out:
            out[row["side"]].add(row["where"]["recfeat"])
            if row.get("server_recfeat"):
                out[row["side"]].add(row["server_recfeat"] + " (the server process)")
    return {k: sorted(v) for k, v in out.items()}


def markdown(meta: dict, rows: list[dict], summary: list[dict], stem: Path, tol: float) -> str:
    m = meta.get("machine", {})
    before, after = meta.get("before", {}), meta.get("after", {})
    a0, a1 = after.get("start", {}), after.get("end", {})
    measured = [r for r in rows if "figures" in r]
    order = " ".join(f"{r['side'][0].upper()}" for r in measured)
    lines = [
        "# Before and after the issue-20 refactor (one extraction engine), same machine, interleaved",
        "",
        f"- Date: {meta.get('started', '?')} to {meta.get('ended', '?')} (UTC)",
        f"- Machine: {m.get('cpu')} ({m.get('vendor')}), {m.get('cpus')} logical CPUs, "
        f"{m.get('memory_gib')} GiB; flags: {', '.join(m.get('kernel_flags', [])) or 'none of interest'}"
        f"{'' if any(f.startswith('amx') for f in m.get('kernel_flags', [])) else ' (no AMX)'}; "
        f"fp32 GEMM default: {m.get('fp32_gemm_default')}; kernel {m.get('kernel')}, Python {m.get('python')}",
        f"- Load average (1/5/15 min) at start {meta.get('load_avg_start')}, at end {meta.get('load_avg_end')} "
        "(other work shares the machine when the 1-min figure is above 0.5 or so)",
        f"- Versions: {', '.join(f'{k} {v}' for k, v in meta.get('versions', {}).items() if v)}",
        f"- Before: commit {before.get('head', '?')[:10]} ({before.get('ref')}: {before.get('subject', '')[:90]}) "
        f"from a git worktree at {before.get('dir')}, imported through a mapping folder first on PYTHONPATH",
        f"- After: the working tree {after.get('dir')} at HEAD {a0.get('head', '?')[:10]} "
        f"with {a0.get('changed_files', '?')} changed/new files in core/, plugins/, exporters/; "
        f"content hash {a0.get('content_hash')} at start, {a1.get('content_hash')} at end"
        + ("" if not a1 else " (**the tree changed during the run**: the after figures may mix two "
           "versions)" if a0.get("content_hash") != a1.get("content_hash") else " (unchanged during the run)"),
        f"- Settings: {meta.get('settings')}",
        f"- Order of the {len(measured)} measurements: {order} (one fresh process each; the side "
        "that goes first alternates every round)",
        "",
        "| bench | figure | before (per round) | after (per round) | after / before (medians) "
        "| paired after/before, per round | verdict |",
        "|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for s in summary:
        unit = (
            ""
            if s["unit"] in ("count", "x") or s["figure"].endswith(s["unit"])
            else f" ({s['unit']})"
        )
        arrow = "↑" if s["better"] == "higher" else "↓"
        paired = ", ".join(fmt(p) for p in s["paired_ratio"]) or "-"
        v = s["verdict"]
        if v not in ("n/a", "same") and s["unit"] != "count":
            v += f" ({s['pairs_worse']}/{len(s['rounds'])} pairs worse)"
        lines.append(f"| {s['bench']} | {s['figure']}{unit} {arrow} | {per_round(s['before'])} | "
                     f"{per_round(s['after'])} | {fmt(s['ratio_of_medians'])} | {paired} | "
                     f"{'**' + v + '**' if v.startswith('WORSE') else v} |")  # fmt: skip
    worse = [s for s in summary if s["verdict"] == "WORSE"]
    lines += [
        "",
        f"↑ higher is better, ↓ lower is better. Verdict: the median of the per-round paired "
        f"ratios (direction-adjusted) against a noise band of ±{tol:.0%} "
        "(twice that for single-request latencies in ms); failure counts: any increase is WORSE.",
        "",
        f"**{len(worse)} figure(s) worse beyond the noise band**"
        + (": " + "; ".join(f"{s['bench']} / {s['figure']}" for s in worse) if worse else "."),
        "",
    ]  # fmt: skip
    paths = side_paths(rows)
    lines += ["Where each side imported `recfeat` from (every measurement records it):", ""]
    lines += [f"- {side}: {', '.join(p) or '-'}" for side, p in paths.items()]
    problems = [r for r in rows if "error" in r or "skipped" in r]
    if problems:
        lines += ["", "Not measured (a figure with fewer pairs than rounds lost them here):", ""]
        for r in problems:
            lines.append(f"- {r.get('bench')} {r.get('side')} round {r.get('round')}: "
                         f"{r.get('error') or r.get('skipped')}")  # fmt: skip
    ray = [r for r in measured if r["bench"] == "ray-vs-local" and r.get("ray_vs_local")]
    if ray:
        lines += ["", "Ray (1 actor) vs local, same answer: " + "; ".join(
            f"{r['side']} r{r['round']}: {json.dumps(r['ray_vs_local'])}" for r in ray)]  # fmt: skip
    lines += [
        "",
        "What each bench runs (both sides through the same harness in benchmarks/; only the "
        "imported `recfeat` differs):",
        "",
        "- encode-bf16 / encode-fp32: `ab_encode.py {bf16,fp32} --texts N` in a fresh process: "
        "all-MiniLM-L6-v2 on torch, the first N Musical Instruments reviews (summary + text), "
        "max_length 256, 200-text warm-up, texts/s of one `encode` call (as the issue-9 table).",
        "- memory-stream: as `bench_memory.py`'s streamed runs: `recfeat extract CORPUS --format "
        "amazon --level review --no-cache --stream` per size in a fresh child, SYNTHETIC "
        "Amazon-schema reviews, TINY RANDOM-WEIGHT BERT (1 layer, hidden 32), max_length 16, "
        "OMP_NUM_THREADS=1; peak RSS = the child's ru_maxrss.",
        "- ray-vs-local: as `bench_ray.py`'s throughput part: the first N Musical Instruments rows, "
        "all-MiniLM-L6-v2 defaults, `recfeat extract --no-cache` vs `--ray --actors 1 "
        "--cpus-per-actor 0.75` on a local Ray started by the driver (its start-up, ~25 s, is in "
        "the Ray figure); driver peak RSS = VmHWM; each a fresh process with an empty cache.",
        "- serve: as `bench_serve.py`, reduced: torch-fp32 MiniLM offline (one `encode` call, "
        "then batch-1 latencies) and `recfeat serve` on loopback (`--model minilm` before, "
        "`--encoder minilm` after), single-text POST /v1/embeddings, closed loop at each "
        "concurrency, disjoint never-seen texts per level; no peer server, no soak.",
        "",
        "Not compared here (too long for one bounded run, or not code of this refactor): the "
        "1M-text streaming and Ray driver-memory points (the 10k/1M targets), the serve soak and "
        "the infinity peer, ONNX Runtime / OpenVINO encode paths, sentence-transformers ratios.",
        "",
        f"Raw lines, per-round values and the machine: `{stem.name}.json`; chart: `{stem.name}.png`.",
        "",
    ]  # fmt: skip
    return "\n".join(lines)


def plot(summary: list[dict], path: Path, title: str, tol: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    items = [s for s in summary if s["median_gain"] is not None]
    if not items:
        return
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(items) + 1.6))
    ys = list(range(len(items)))[::-1]
    colors = {"WORSE": "#cc3311", "better": "#228833", "within noise": "#4477aa"}
    for y, s in zip(ys, items, strict=True):
        ax.barh(
            y, s["median_gain"] - 1, left=1, color=colors.get(s["verdict"], "#999999"), height=0.6
        )
        pts = [p for p in s["paired_gain"] if p is not None]
        ax.plot(pts, [y] * len(pts), "k.", ms=4)
    ax.axvspan(1 - tol, 1 + tol, color="#dddddd", zorder=0)
    ax.axvline(1, color="k", lw=0.8)
    ax.set_xscale("log")
    everything = [p for s in items for p in s["paired_gain"] if p] + [
        s["median_gain"] for s in items
    ]
    lo, hi = min([0.8, *everything]), max([1.25, *everything])
    ax.set_xlim(lo / 1.1, hi * 1.1)
    ticks = [t for t in (0.25, 0.5, 0.8, 1, 1.25, 2, 4, 8, 16) if lo / 1.1 <= t <= hi * 1.1]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_yticks(ys)
    ax.set_yticklabels([f"{s['bench']}: {s['figure']}" for s in items], fontsize=7)
    ax.set_xlabel(
        "after vs before, direction-adjusted (> 1 better); bar = median of pairs, dots = pairs"
    )
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def report(args) -> int:
    rows = read_raw(Path(args.raw))
    meta_data = json.loads(Path(args.meta).read_text()) if Path(args.meta).exists() else {}
    summary = summarize(rows, args.tol)
    stem = Path(args.out)
    stem.parent.mkdir(parents=True, exist_ok=True)
    # the sides' imports must be their own trees: a mix-up makes the table meaningless
    bad = [r for r in rows if "where" in r and (
        (r["side"] == "before") != ("/pkg/recfeat/" in r["where"]["recfeat"]))]  # fmt: skip
    if bad:
        print(f"ab_report: {len(bad)} measurement(s) imported the wrong tree, e.g. {bad[0]['where']}",
              file=sys.stderr)  # fmt: skip
    md = markdown(meta_data, rows, summary, stem, args.tol)
    if bad:
        md = (
            f"**WARNING: {len(bad)} measurement(s) imported the wrong tree; do not use this table.**\n\n"
            + md
        )
    for suffix, text in ((".md", md), (".json", json.dumps(
            {"meta": meta_data, "summary": summary, "raw": rows}, indent=1) + "\n")):  # fmt: skip
        tmp = stem.with_name(stem.name + suffix + ".tmp")
        tmp.write_text(text)
        tmp.replace(stem.with_name(stem.name + suffix))
    m = meta_data.get("machine", {})
    plot(
        summary,
        stem.with_name(stem.name + ".png"),
        f"issue 20 refactor, after vs before (interleaved), {m.get('cpu')}, {m.get('cpus')} CPUs",
        args.tol,
    )
    print(md)
    return 1 if bad else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    mp = sub.add_parser("meta")
    mp.add_argument("--phase", choices=["start", "end"], required=True)
    mp.add_argument("--meta", required=True)
    mp.add_argument("--before-dir", required=True)
    mp.add_argument("--before-ref", default="")
    mp.add_argument("--after-dir", required=True)
    mp.add_argument("--setup-s", type=int, default=None)
    mp.add_argument("--settings", default="")
    rp = sub.add_parser("report")
    rp.add_argument("--raw", required=True)
    rp.add_argument("--meta", required=True)
    rp.add_argument("--out", required=True, help="output stem (.md/.json/.png)")
    rp.add_argument("--tol", type=float, default=0.05)
    args = ap.parse_args()
    if args.cmd == "meta":
        meta(args)
        return 0
    return report(args)


if __name__ == "__main__":
    sys.exit(main())
