"""Figures, targets and the written report of bench_serve.py (pure functions, no timing).

``summarize`` turns one load level's samples into its figures; ``soak_rss`` compares the
server's memory over the first and the last requests of the soak; ``check_targets`` states
every issue-14 target as measured / threshold / met; ``markdown`` and ``plot`` write them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from recfeat.bench.measure import percentile

MB = 1024.0 * 1024.0
#: the issue-14 thresholds
SERVED_VS_OFFLINE = 0.80  # served texts/s at concurrency 64 >= 80% of offline batch texts/s
P50_SLACK_MS = 5.0  # p50 at concurrency 1 <= batch-1 encode latency + 5 ms
RSS_BAND = 0.10  # soak RSS: last window within +-10% of the first
SOAK_WINDOW = 10_000  # requests in each soak window (fewer when the soak is shorter)
DESIGNED = frozenset({"429"})  # refusals by design (queue full), not failures
HEADLINE_CONCURRENCY = 64


def latency_ms(samples, q: float) -> float | None:
    """The q-th percentile latency (ms) of the successful requests, None without any."""
    ok = [s.latency_s * 1e3 for s in samples if s.status == "200"]
    return round(percentile(ok, q), 3) if ok else None


def summarize(run, server_cores: int | None = None) -> dict:
    """One load level's figures. Throughput counts answered (200) requests over the span
    from the first request sent to the last answer received."""
    samples = run.samples
    ok = [s for s in samples if s.status == "200"]
    span = (max(s.end for s in samples) - min(s.start for s in samples)) if samples else 0.0
    statuses = Counter(s.status for s in samples)
    tokens = [s.tokens for s in ok if s.tokens is not None]
    rss = [r for _, _, r in run.rss]
    out = {
        "concurrency": run.concurrency,
        "requests": len(samples),
        "ok": len(ok),
        "statuses": dict(sorted(statuses.items())),
        "failures": failures(statuses),
        "designed_refusals": sum(n for k, n in statuses.items() if k in DESIGNED),
        "span_s": round(span, 3),
        "stopped_by": run.stopped_by,
        "req_per_s": round(len(ok) / span, 2) if span > 0 else None,
        "texts_per_s": round(sum(s.texts for s in ok) / span, 2) if span > 0 else None,
        "mean_tokens": round(sum(tokens) / len(tokens), 1) if tokens else None,
        "p50_ms": latency_ms(samples, 50),
        "p95_ms": latency_ms(samples, 95),
        "p99_ms": latency_ms(samples, 99),
        "mean_ms": round(sum(s.latency_s for s in ok) * 1e3 / len(ok), 3) if ok else None,
        "max_ms": round(max(s.latency_s for s in ok) * 1e3, 3) if ok else None,
        "client_cpu_s": round(run.client_cpu_s, 3),
        # 100% = one core busy for the whole level; the machine has server_cores of them
        "client_cpu_pct": round(100 * run.client_cpu_s / span, 1) if span > 0 else None,
        "server_cpu_s": None if run.server_cpu_s is None else round(run.server_cpu_s, 3),
        "server_cpu_pct": (round(100 * run.server_cpu_s / span, 1)
                           if run.server_cpu_s is not None and span > 0 else None),  # fmt: skip
        "rss_mb_min": round(min(rss) / MB, 1) if rss else None,
        "rss_mb_max": round(max(rss) / MB, 1) if rss else None,
    }
    return out


def failures(statuses: dict) -> int:
    """Requests that were neither answered (200) nor refused by design (429)."""
    return sum(n for k, n in statuses.items() if k != "200" and k not in DESIGNED)


def soak_rss(rss: Sequence[tuple[float, int, int]], answered: int,
             window: int = SOAK_WINDOW) -> dict:  # fmt: skip
    """Mean server RSS while the first ``window`` requests were answered vs while the last
    ``window`` were (window = half the soak when the soak has fewer than 2 x window).
    ``rss`` is (seconds, requests answered so far, bytes) as sampled during the soak."""
    w = min(window, answered // 2)
    if w < 1 or not rss:
        return {"window": w, "first_mb": None, "last_mb": None, "change_pct": None,
                "samples_first": 0, "samples_last": 0}  # fmt: skip
    first = [r for _, done, r in rss if done <= w]
    last = [r for _, done, r in rss if done >= answered - w]
    first_mb = sum(first) / len(first) / MB if first else None
    last_mb = sum(last) / len(last) / MB if last else None
    change = (100.0 * (last_mb / first_mb - 1.0)) if first_mb and last_mb else None
    return {
        "window": w,
        "first_mb": None if first_mb is None else round(first_mb, 1),
        "last_mb": None if last_mb is None else round(last_mb, 1),
        "change_pct": None if change is None else round(change, 2),
        "samples_first": len(first),
        "samples_last": len(last),
        "peak_mb": round(max(r for _, _, r in rss) / MB, 1),
    }


def level(server: dict, concurrency: int) -> dict | None:
    for row in server.get("levels", []):
        if row["concurrency"] == concurrency:
            return row
    return None


def _target(name: str, measured, threshold, met, protocol: str) -> dict:
    return {"target": name, "measured": measured, "threshold": threshold, "met": met,
            "protocol": protocol}  # fmt: skip


def check_targets(results: dict) -> list[dict]:
    """Every issue-14 target for every recfeat server that ran (met=None: not measured)."""
    out = []
    servers = [s for s in results.get("servers", []) if s.get("status") == "ok"]
    offline = results.get("offline", {})
    peers = [s for s in servers if s["kind"] == "peer"]
    for srv in (s for s in servers if s["kind"] == "recfeat"):
        choice = srv["backend"]
        off = offline.get(choice, {})
        top = level(srv, HEADLINE_CONCURRENCY)
        mixed = (top or {}).get("offline_interleaved")
        if top and mixed and top["texts_per_s"] is not None:
            ratio = top["texts_per_s"] / mixed["texts_per_s"]
            out.append(_target(
                f"{srv['name']}: texts/s at concurrency {HEADLINE_CONCURRENCY} >= "
                f"{SERVED_VS_OFFLINE:.0%} of offline batch", f"{ratio:.1%} ({top['texts_per_s']:.1f} "
                f"vs {mixed['texts_per_s']:.1f} texts/s)", f">= {SERVED_VS_OFFLINE:.0%}",
                ratio >= SERVED_VS_OFFLINE,
                f"served: single-text requests, concurrency {HEADLINE_CONCURRENCY}, in "
                f"{mixed['parts']} parts; offline: encode() of the same texts, "
                f"{mixed['texts_per_call']} per call, one call before each part"))  # fmt: skip
        elif top and off.get("texts_per_s") and top["texts_per_s"] is not None:
            ratio = top["texts_per_s"] / off["texts_per_s"]
            out.append(_target(
                f"{srv['name']}: texts/s at concurrency {HEADLINE_CONCURRENCY} >= "
                f"{SERVED_VS_OFFLINE:.0%} of offline batch", f"{ratio:.1%} ({top['texts_per_s']:.1f} "
                f"vs {off['texts_per_s']:.1f} texts/s)", f">= {SERVED_VS_OFFLINE:.0%}",
                ratio >= SERVED_VS_OFFLINE,
                f"served: single-text requests, concurrency {HEADLINE_CONCURRENCY}; offline: "
                f"encode() of the same {off.get('texts')} texts in one call"))  # fmt: skip
        one = level(srv, 1)
        mixed1 = ((one or {}).get("offline_interleaved") or {}).get("batch1")
        batch1 = mixed1 or off.get("batch1") or {}
        b1 = batch1.get("p50_ms")
        if one and one["p50_ms"] is not None and b1 is not None:
            limit = b1 + P50_SLACK_MS
            out.append(_target(
                f"{srv['name']}: p50 at concurrency 1 <= batch-1 encode + {P50_SLACK_MS:g} ms",
                f"{one['p50_ms']:.2f} ms", f"<= {limit:.2f} ms ({b1:.2f} + {P50_SLACK_MS:g})",
                one["p50_ms"] <= limit,
                f"batch-1: median of encode([text]) over {batch1['n']} of the same texts"
                + (", timed between the parts of the level" if mixed1 else "")))  # fmt: skip
        failed = sum(r["failures"] for r in srv["levels"]) + (srv.get("soak") or {}).get("failures", 0)
        refused = sum(r["designed_refusals"] for r in srv["levels"]) + (
            (srv.get("soak") or {}).get("designed_refusals", 0))
        out.append(_target(f"{srv['name']}: no failed request but designed 429s",
                           f"{failed} failed, {refused} x 429", "0 failed", failed == 0,
                           "every request of every level and of the soak"))  # fmt: skip
        soak = srv.get("soak")
        rss = (soak or {}).get("rss") or {}
        change = rss.get("change_pct")
        out.append(_target(
            f"{srv['name']}: RSS flat (+-{RSS_BAND:.0%}) from the first to the last requests of the soak",
            "not measured" if change is None else
            f"{change:+.1f}% ({rss['first_mb']} -> {rss['last_mb']} MiB)",
            f"within +-{RSS_BAND:.0%}", None if change is None else abs(change) <= 100 * RSS_BAND,
            "soak not run" if not soak else
            f"{soak['requests']} requests at concurrency {soak['concurrency']}; mean RSS of the "
            f"server process tree while the first vs the last {rss.get('window')} were answered"))  # fmt: skip
        for peer in peers:
            for row in srv["levels"]:
                theirs = level(peer, row["concurrency"])
                if not theirs or theirs["texts_per_s"] is None or row["texts_per_s"] is None:
                    continue
                faster = row["texts_per_s"] >= theirs["texts_per_s"]
                tail = (row["p99_ms"] is not None and theirs["p99_ms"] is not None
                        and row["p99_ms"] <= theirs["p99_ms"])  # fmt: skip
                out.append(_target(
                    f"{srv['name']} vs {peer['name']} at concurrency {row['concurrency']}: "
                    "texts/s >= peer's and p99 <= peer's",
                    f"{row['texts_per_s']:.1f} vs {theirs['texts_per_s']:.1f} texts/s; p99 "
                    f"{row['p99_ms']:.1f} vs {theirs['p99_ms']:.1f} ms", ">= and <=",
                    faster and tail, "same requests, same order, same client"))  # fmt: skip
    return out


# -- writing -------------------------------------------------------------------------------
def _f(v, digits: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return str(v)


def _met(v) -> str:
    return "not measured" if v is None else ("**met**" if v else "**MISSED**")


def markdown(results: dict, targets: list[dict]) -> str:
    env = results["environment"]
    st = results["settings"]
    lines = [
        "# recfeat serve: served vs offline throughput, latency, memory, peer server",
        "",
        f"Command: `{results['command']}` (about {results['wall_s'] / 60:.0f} min here).",
        "",
        f"- date: {env.get('date')}; machine: {env.get('cpu_model')} ({env.get('cpu_count')} "
        f"logical CPUs, {env.get('ram_gib')} GiB RAM), flags: {', '.join(env.get('cpu_flags') or [])}",
        f"- load average (1 min) at start / end: {results['load_start']} / {results['load_end']}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in (env.get("libraries") or {}).items() if v),
        f"- requests: single-text POST {st['route']} (OpenAI-compatible, encoding_format float), "
        f"texts drawn from {results['corpus']['name']} ({results['corpus']['texts']:,} distinct "
        f"non-empty review texts after the server's default cleaning, shuffled with seed "
        f"{st['seed']}, mean {results['corpus']['mean_chars']:.0f} characters); "
        "every level gets texts the server has not seen before (disjoint slices), so no cache "
        "answers them; every server gets the same texts in the same order",
        f"- load: closed loop, N worker threads each with one keep-alive connection "
        f"(http.client); per level at most {st['requests']} requests or {st['time_limit_s']} s; "
        f"{st['warmup_requests']} warm-up requests first (not counted)",
        "- the client runs on the same 2 CPUs as the server: its CPU use is in the tables "
        "(client CPU %, 100% = one core), and so is the server's",
        "",
    ]
    for note in results.get("notes", []):
        lines.append(f"> {note}")
        lines.append("")
    lines += ["## Targets (issue 14)", "", "| target | measured | threshold | result | protocol |",
              "|---|---|---|---|---|"]  # fmt: skip
    for t in targets:
        lines.append(f"| {t['target']} | {t['measured']} | {t['threshold']} | {_met(t['met'])} "
                     f"| {t['protocol']} |")  # fmt: skip
    lines += ["", "## Offline (in-process, same backend, same texts)", "",
              "| backend | texts | batch texts/s | batch-1 p50 ms | batch-1 p95 ms | batch-1 n |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for choice, off in results.get("offline", {}).items():
        b1 = off.get("batch1") or {}
        lines.append(f"| {choice} | {off.get('texts')} | {_f(off.get('texts_per_s'))} | "
                     f"{_f(b1.get('p50_ms'), 2)} | {_f(b1.get('p95_ms'), 2)} | {b1.get('n')} |")  # fmt: skip
    mixed = [(srv, r) for srv in results.get("servers", []) if srv.get("status") == "ok"
             for r in srv["levels"] if r.get("offline_interleaved")]  # fmt: skip
    if mixed:
        lines += ["", "## Served vs offline, interleaved", "",
                  "Each level ran in parts; before each part this process encoded the next "
                  "slice of the concurrency-64 texts offline (one encode() call), so both "
                  "figures of a row saw the same machine load. The engine column is the share "
                  "of the served time the encode thread spent in batcher groups.", "",
                  "| server | concurrency | served texts/s | offline texts/s | served / offline "
                  f"| margin to {SERVED_VS_OFFLINE:.0%} | parts | offline texts per call "
                  "| texts per engine call | engine busy |",
                  "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for srv, r in mixed:
            m, b = r["offline_interleaved"], r.get("batching") or {}
            ratio = r["texts_per_s"] / m["texts_per_s"] if r["texts_per_s"] else None
            busy = (b["engine_s"] / r["span_s"]) if b.get("engine_s") and r.get("span_s") else None
            lines.append(
                f"| {srv['name']} | {r['concurrency']} | {_f(r['texts_per_s'])} "
                f"| {_f(m['texts_per_s'])} | {'-' if ratio is None else f'{ratio:.1%}'} "
                f"| {'-' if ratio is None else f'{100 * (ratio - SERVED_VS_OFFLINE):+.1f} pts'} "
                f"| {m['parts']} | {m['texts_per_call']} "
                f"| {_f(b.get('mean_texts_per_call'), 2)} | {'-' if busy is None else f'{busy:.0%}'} |")  # fmt: skip
    lines += ["", "## Served", "",
              "| server | concurrency | requests | ok | statuses | texts/s | p50 ms | p95 ms "
              "| p99 ms | texts per engine call | client CPU % | server CPU % | server RSS MiB (max) "
              "| stopped by |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for srv in results.get("servers", []):
        if srv.get("status") != "ok":
            continue
        for r in srv["levels"]:
            statuses = ", ".join(f"{k}: {v}" for k, v in r["statuses"].items())
            lines.append(
                f"| {srv['name']} | {r['concurrency']} | {r['requests']} | {r['ok']} | {statuses} "
                f"| {_f(r['texts_per_s'])} | {_f(r['p50_ms'])} | {_f(r['p95_ms'])} "
                f"| {_f(r['p99_ms'])} | {_f((r.get('batching') or {}).get('mean_texts_per_call'), 2)} "
                f"| {_f(r['client_cpu_pct'])} | {_f(r['server_cpu_pct'])} "
                f"| {_f(r['rss_mb_max'])} | {r['stopped_by']} |")  # fmt: skip
    lines += ["", "## Servers", ""]
    for srv in results.get("servers", []):
        config = ", ".join(f"{k}: {v}" for k, v in (srv.get("config") or {}).items() if v)
        if srv.get("status") == "ok":
            cos = srv.get("min_cosine_vs_recfeat")
            same = ("" if cos is None or srv["kind"] == "recfeat" else
                    f"; smallest cosine to recfeat's vectors on the same 8 short texts {cos:.5f}")  # fmt: skip
            lines.append(f"- **{srv['name']}** ({srv['kind']}): ready {srv['ready_s']:.1f} s "
                         f"after launch; {config}{same}")  # fmt: skip
        else:
            lines.append(f"- **{srv['name']}** ({srv['kind']}): {srv['status']}: {srv['reason']}")
        if srv.get("soak"):
            s = srv["soak"]
            rss = s["rss"]
            lines.append(f"  - soak: {s['requests']} requests at concurrency {s['concurrency']} "
                         f"(every text new: ' #k' appended on pass k over the pool), "
                         f"{s['ok']} ok, statuses {s['statuses']}, {_f(s.get('texts_per_s'))} "
                         f"texts/s; RSS first {rss['window']} requests {rss['first_mb']} MiB, "
                         f"last {rss['window']} {rss['last_mb']} MiB ({_f(rss['change_pct'], 2)}%), "
                         f"peak {rss.get('peak_mb')} MiB")  # fmt: skip
        if srv.get("metrics"):
            lines.append(f"  - /metrics after the run: {srv['metrics']}")
    if results.get("peer_setup"):
        lines += ["", "## Peer servers: how they were set up", ""]
        lines += [f"- {line}" for line in results["peer_setup"]]
    lines.append("")
    return "\n".join(lines)


def plot(path, results: dict) -> None:
    """Three panels: texts/s by concurrency (offline batch as dashed lines), p50 and p99
    latency by concurrency, soak RSS against requests answered."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from recfeat.atomic import atomic_path

    servers = [s for s in results.get("servers", []) if s.get("status") == "ok"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, srv in enumerate(servers):
        c = colors[i % len(colors)]
        xs = [r["concurrency"] for r in srv["levels"]]
        axes[0].plot(xs, [r["texts_per_s"] or 0 for r in srv["levels"]], "o-", color=c,
                     label=srv["name"])  # fmt: skip
        axes[1].plot(xs, [r["p50_ms"] or float("nan") for r in srv["levels"]], "o-", color=c,
                     label=f"{srv['name']} p50")  # fmt: skip
        axes[1].plot(xs, [r["p99_ms"] or float("nan") for r in srv["levels"]], "s--", color=c,
                     label=f"{srv['name']} p99")  # fmt: skip
        soak = srv.get("soak")
        if soak and soak.get("rss_trace"):
            done, mb = zip(*soak["rss_trace"], strict=True)
            axes[2].plot(done, mb, "-", color=c, label=srv["name"])
        mixed = [(r["concurrency"], r["offline_interleaved"]["texts_per_s"]) for r in srv["levels"]
                 if r.get("offline_interleaved")]  # fmt: skip
        if mixed:
            axes[0].plot(*zip(*mixed, strict=True), "x:", color=c,
                         label=f"offline between the parts ({srv['backend']})")  # fmt: skip
        if srv["kind"] == "recfeat":
            off = results.get("offline", {}).get(srv["backend"], {})
            if off.get("texts_per_s"):
                axes[0].axhline(off["texts_per_s"], color=c, ls=":", lw=1,
                                label=f"offline batch {srv['backend']} (before the server)")  # fmt: skip
                axes[0].axhline(SERVED_VS_OFFLINE * off["texts_per_s"], color=c, ls="--", lw=0.7,
                                label=f"{SERVED_VS_OFFLINE:.0%} of offline")  # fmt: skip
    for ax, title, ylabel in (
        (axes[0], "throughput", "texts/s (single-text requests)"),
        (axes[1], "latency", "ms"),
        (axes[2], "server RSS during the soak", "MiB"),
    ):
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    levels = sorted({r["concurrency"] for srv in servers for r in srv["levels"]})
    for ax in axes[:2]:
        ax.set_xscale("log", base=2)
        ax.set_xticks(levels, [str(c) for c in levels])
        ax.set_xlabel("concurrency")
    if any(v and v > 0 for line in axes[1].lines for v in line.get_ydata()):
        axes[1].set_yscale("log")  # only with something to show: no answers, no log axis
    axes[2].set_xlabel("requests answered")
    fig.suptitle(f"recfeat serve vs offline and peer, loopback, {results['environment'].get('cpu_count')} "
                 f"CPUs shared with the client (benchmarks/bench_serve.py)", fontsize=10)  # fmt: skip
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
