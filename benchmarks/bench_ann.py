"""Benchmark: the approximate index of ``recfeat serve --index hnsw`` against the exact search.

Synthetic item vectors stand in for a large catalogue: 384-d (MiniLM's width), unit length,
drawn around 1,000 cluster centres with a low-rank spread (a decaying spectrum over 48
directions plus a little isotropic noise), so neighbours are not equidistant as in uniform
random data; seeded. 1,000 queries come from the same distribution (none is an item).
For each catalogue size (default 100,000 and 1,000,000 items), in one process:

1. The items go into the server's own item store (``recfeat.serve.items.ItemStore``) and
   ``recfeat.serve.index.StoreIndex`` builds the HNSW index over them, as ``recfeat serve``
   does at start (centred on the mean item vector, faiss ``IndexHNSWFlat``, inner product,
   M=32, efConstruction 64): build time.
2. Library level, on the same centred unit rows: ``ExactIndex`` (one matrix-vector product
   and ``argpartition``) gives the true top 10 of each query; ``HNSWIndex`` at each efSearch
   of ``--ef`` gives recall@10 against it. Latency per single query (one query per call,
   p50 and p99 over the queries) for exact and for each efSearch.
3. Serve level: ``Recommender._by_text`` (the text-profile ranking behind ``POST
   /recommend``) with the exact path as it is (one float32 product over the stored rows,
   their centred lengths cached per store version) and with the index (candidates from HNSW at the default
   efSearch, scored exactly): latency per request, recall@10 of the served ranking against
   the exact one, and the largest score difference on the items both return (0: same scale).
   The exact serve path is slow at 1M, so it runs on ``--serve-exact-queries`` queries.

The machine is shared with other work: the load average is sampled at every phase, and the
speed figures are ratios (exact / approximate) measured side by side in this one run.

    .venv/bin/python benchmarks/bench_ann.py [--sizes 100000,1000000] [--queries 1000]

Writes benchmarks/results/ann.json, ann.md and ann.png (latency against recall).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DIM = 384
K = 10


def catalogue(n: int, n_queries: int, seed: int, clusters: int = 1000, rank: int = 48):
    """(n, DIM) unit item vectors and (n_queries, DIM) unit queries from one distribution."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, DIM)).astype(np.float32)
    basis = (rng.standard_normal((DIM, rank)) / np.sqrt(rank)).astype(np.float32)
    spectrum = (1.0 / np.sqrt(np.arange(1, rank + 1))).astype(np.float32)
    total = n + n_queries
    out = np.empty((total, DIM), np.float32)
    for start in range(0, total, 100_000):
        m = min(100_000, total - start)
        z = rng.standard_normal((m, rank)).astype(np.float32) * spectrum
        x = (0.35 * centres[rng.integers(0, clusters, m)] + z @ basis.T
             + 0.02 * rng.standard_normal((m, DIM)).astype(np.float32))  # fmt: skip
        out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out[:n], out[n:]


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def per_query(fn, queries) -> np.ndarray:
    """Seconds of ``fn(q)`` for each query, one call each."""
    times = np.empty(len(queries))
    for i, q in enumerate(queries):
        start = time.perf_counter()
        fn(q)
        times[i] = time.perf_counter() - start
    return times


def latency(times: np.ndarray) -> dict:
    ms = times * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 4),
            "p99_ms": round(float(np.percentile(ms, 99)), 4), "n": len(ms)}  # fmt: skip


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = [len(set(f[f >= 0].tolist()) & set(t[t >= 0].tolist())) for f, t in zip(found, truth, strict=True)]
    return float(np.sum(hits) / truth[:, :K].size)


def run_size(n: int, args, log) -> dict:
    from recfeat.serve.index import ExactIndex, StoreIndex
    from recfeat.serve.items import ItemStore
    from recfeat.serve.recommender import Recommender, _unit

    out: dict = {"items": n, "load": {"start": load()}}
    start = time.perf_counter()
    items, queries = catalogue(n, args.queries, args.seed)
    out["generate_s"] = round(time.perf_counter() - start, 1)
    ids = [f"i{j}" for j in range(n)]
    store = ItemStore(DIM, {}, max_items=n)
    store.put_many(ids, items, added=False)
    del items
    log(f"{n}: data ready ({out['generate_s']} s), building HNSW")

    start, cpu = time.perf_counter(), time.process_time()
    index = StoreIndex(store, m=args.m, ef_construction=args.ef_construction)
    out["build_s"] = round(time.perf_counter() - start, 1)
    # CPU seconds over all threads: what the build costs whatever else runs on the machine
    out["build_cpu_s"] = round(time.process_time() - cpu, 1)
    out["params"] = {"M": args.m, "efConstruction": args.ef_construction}
    out["load"]["after_build"] = load()
    log(f"{n}: built in {out['build_s']} s ({out['build_cpu_s']} CPU s)")

    # library level: the same centred unit rows, exact against HNSW
    center = index.center
    rows = np.empty_like(store.vectors)
    for s in range(0, n, 65536):
        rows[s : s + 65536] = _unit(store.vectors[s : s + 65536].astype(np.float64) - center)
    q = _unit(queries.astype(np.float64) - center).astype(np.float32)
    exact = ExactIndex(rows)
    start = time.perf_counter()
    truth, _ = exact.search(q, K)
    out["exact_batch_s"] = round(time.perf_counter() - start, 2)
    n_exact = min(len(q), args.exact_queries if n > 200_000 else len(q))
    out["exact"] = latency(per_query(lambda v, e=exact: e.search(v, K), q[:n_exact]))
    out["load"]["after_exact"] = load()
    log(f"{n}: exact p50 {out['exact']['p50_ms']} ms")
    sweep = []
    hnsw = index.index
    for ef in args.ef:
        hnsw.ef_search = ef
        found, _ = hnsw.search(q, K)
        row = {"efSearch": ef, "recall_at_10": round(recall(found, truth), 4),
               **latency(per_query(lambda v: hnsw.search(v, K), q))}  # fmt: skip
        row["speedup_p50"] = round(out["exact"]["p50_ms"] / row["p50_ms"], 1)
        sweep.append(row)
        log(f"{n}: efSearch {ef}: recall {row['recall_at_10']}, p50 {row['p50_ms']} ms")
    out["hnsw"] = sweep
    hnsw.ef_search = args.default_ef
    out["load"]["after_sweep"] = load()
    del rows, exact

    # serve level: the ranking behind POST /recommend, exact path as it is and with the index
    rec = Recommender(None, store)
    histories = [v[None, :] for v in queries]
    n_serve = min(len(histories), args.serve_exact_queries if n > 200_000 else 100)
    exact_rank, approx_rank = [], []
    t_exact = per_query(lambda h: exact_rank.append(rec._by_text(h, K, set())), histories[:n_serve])
    rec.index = index
    t_approx = per_query(lambda h: approx_rank.append(rec._by_text(h, K, set())), histories)
    rec.index = None
    hits, diff = 0, 0.0
    for e, a in zip(exact_rank, approx_rank[:n_serve], strict=True):
        es = {r["item"]: r["score"] for r in e}
        common = [r for r in a if r["item"] in es]
        hits += len(common)
        diff = max([diff, *(abs(r["score"] - es[r["item"]]) for r in common)])
    out["serve"] = {"efSearch": args.default_ef, "exact": latency(t_exact),
                    "hnsw": latency(t_approx), "recall_at_10": round(hits / (K * n_serve), 4),
                    "max_score_difference_on_common_items": diff}  # fmt: skip
    out["serve"]["speedup_p50"] = round(out["serve"]["exact"]["p50_ms"]
                                        / out["serve"]["hnsw"]["p50_ms"], 1)  # fmt: skip
    out["load"]["end"] = load()
    log(f"{n}: serve exact p50 {out['serve']['exact']['p50_ms']} ms, hnsw p50 "
        f"{out['serve']['hnsw']['p50_ms']} ms, recall {out['serve']['recall_at_10']}")  # fmt: skip
    return out


def plot(sizes: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    colors = ["#4c72b0", "#dd8452", "#55a868", "#c44e52"]
    for color, size in zip(colors, sizes, strict=False):
        label = f"{size['items']:,} items"
        xs = [r["recall_at_10"] for r in size["hnsw"]]
        ys = [r["p50_ms"] for r in size["hnsw"]]
        ax.plot(xs, ys, "o-", color=color, label=f"HNSW, {label}")
        for r in size["hnsw"]:
            ax.annotate(f"ef {r['efSearch']}", (r["recall_at_10"], r["p50_ms"]), fontsize=7,
                        textcoords="offset points", xytext=(4, -9))  # fmt: skip
        ax.plot([1.0], [size["exact"]["p50_ms"]], "s", color=color, markersize=8,
                label=f"exact, {label}")  # fmt: skip
    ax.axvline(0.95, color="grey", lw=0.8, ls="--")
    ax.set_yscale("log")
    ax.set_xlabel("recall@10 against the exact search")
    ax.set_ylabel("latency per single query, p50 (ms, log)")
    ax.set_title("Top-10 search over 384-d unit vectors (2 shared cores)")
    ax.legend(frameon=False, fontsize=8, loc="center left")
    fig.tight_layout()
    from recfeat.atomic import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def report(record: dict) -> str:
    env = record["environment"]
    lines = ["# Approximate nearest-neighbour index (`recfeat serve --index hnsw`)", "",
             f"Synthetic catalogues: {DIM}-d unit vectors around 1,000 clusters with a low-rank "
             f"spread (seed {record['seed']}), {record['queries']:,} queries from the same "
             "distribution, top 10. faiss `IndexHNSWFlat` (inner product) built by "
             "`recfeat.serve.index.StoreIndex` as the server does at start; recall@10 against "
             "the exact search of the same centred unit rows. Latency: one query per call, "
             "p50 / p99 over the queries. Speed-ups are ratios measured side by side in this run.",
             ""]  # fmt: skip
    for size in record["sizes"]:
        n = size["items"]
        p = size["params"]
        lines += [f"## {n:,} items", "",
                  f"Build (M {p['M']}, efConstruction {p['efConstruction']}): "
                  f"**{size['build_s']} s** wall, {size['build_cpu_s']} CPU s over "
                  f"{record['environment']['faiss_omp_threads']} threads (the wall time on "
                  "an otherwise idle machine is about CPU s / threads). "
                  f"Exact search of all {record['queries']:,} queries "
                  f"in one batch: {size['exact_batch_s']} s.", "",
                  "| search | recall@10 | p50 ms | p99 ms | exact p50 / this p50 |",
                  "|---|---|---|---|---|",
                  f"| exact (matmul + argpartition, {size['exact']['n']} queries) | 1.0 | "
                  f"{size['exact']['p50_ms']:.3f} | {size['exact']['p99_ms']:.3f} | 1.0x |"]  # fmt: skip
        for r in size["hnsw"]:
            lines.append(f"| HNSW efSearch {r['efSearch']} | {r['recall_at_10']:.4f} | "
                         f"{r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['speedup_p50']}x |")  # fmt: skip
        s = size["serve"]
        at = next((r for r in size["hnsw"] if r["efSearch"] == s["efSearch"]), None)
        if at is not None:
            met = "met" if at["recall_at_10"] >= 0.95 else "MISSED"
            lines += ["", f"Target recall@10 >= 0.95 at the server's efSearch {s['efSearch']}: "
                      f"**{at['recall_at_10']:.4f}**, {met} (margin "
                      f"{at['recall_at_10'] - 0.95:+.4f})."]  # fmt: skip
        lines += ["", f"Serve's text-profile ranking (`POST /recommend`): exact path as shipped "
                  f"(one float32 product over every stored row, centred lengths cached; {s['exact']['n']} requests) "
                  f"p50 {s['exact']['p50_ms']:.1f} ms / p99 {s['exact']['p99_ms']:.1f} ms; with "
                  f"`--index hnsw` (efSearch {s['efSearch']}, candidates scored exactly) p50 "
                  f"{s['hnsw']['p50_ms']:.2f} ms / p99 {s['hnsw']['p99_ms']:.2f} ms: "
                  f"**{s['speedup_p50']}x** faster at p50, recall@10 of the served ranking "
                  f"**{s['recall_at_10']:.4f}**, largest score difference on items both return "
                  f"{s['max_score_difference_on_common_items']:.1e}.", "",
                  f"Load average (1, 5, 15 min) at start {size['load']['start']}, after build "
                  f"{size['load']['after_build']}, end {size['load']['end']}.", ""]  # fmt: skip
    lines += [f"Command: `{record['command']}` ({record['wall_s']:.0f} s wall).", "",
              f"Machine: {env['cpu']}, {env['cores']} cores, shared with other work (load "
              f"averages above); numpy {env['numpy']}, faiss-cpu {env['faiss']}, Python "
              f"{env['python']}; measured {record['measured_utc']} UTC.", "",
              "![latency against recall](ann.png)", ""]  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    import sys

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="100000,1000000")
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--ef", default="32,64,128,256,512", help="efSearch values to sweep")
    p.add_argument("--default-ef", type=int, default=None,
                   help="efSearch of the serve-level run [default: recfeat.serve.index's]")
    p.add_argument("--m", type=int, default=None)
    p.add_argument("--ef-construction", type=int, default=None)
    p.add_argument("--exact-queries", type=int, default=300,
                   help="queries timed one at a time by the exact search above 200k items")
    p.add_argument("--serve-exact-queries", type=int, default=20,
                   help="requests timed on serve's exact path above 200k items")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args()
    import faiss

    from recfeat.atomic import write_text
    from recfeat.machine import cpu_model
    from recfeat.serve import index as ann

    args.ef = [int(x) for x in args.ef.split(",")]
    args.m = args.m or ann.HNSW_M
    args.ef_construction = args.ef_construction or ann.HNSW_EF_CONSTRUCTION
    args.default_ef = args.default_ef or ann.HNSW_EF_SEARCH
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.0f} s, load {load()[0]}] {msg}", flush=True)

    sizes = [run_size(int(n), args, log) for n in args.sizes.split(",")]
    record = {
        "command": " ".join(["python benchmarks/bench_ann.py", *sys.argv[1:]]),
        "seed": args.seed, "queries": args.queries, "k": K, "dim": DIM, "sizes": sizes,
        "wall_s": round(time.perf_counter() - t0, 1),
        "measured_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "environment": {"cpu": cpu_model(), "cores": os.cpu_count(),
                        "python": platform.python_version(), "numpy": np.__version__,
                        "faiss": faiss.__version__, "faiss_omp_threads": faiss.omp_get_max_threads(),
                        "note": "machine shared with other work; see the load averages"},
    }  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "ann.json", json.dumps(record, indent=1) + "\n")
    write_text(out / "ann.md", report(record))
    plot(sizes, out / "ann.png")
    print(report(record))


if __name__ == "__main__":
    main()
