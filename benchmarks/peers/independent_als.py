"""An independent tuning of implicit's ALS on MovieLens 100k (issue 25), to set beside the
``implicit-als`` peer (recfeat's wrapper, tuned with 10 trials) and recfeat's own ``als``.

The tuning path uses numpy, scipy and the implicit library only: the data is read from
``u.data``, the split, the ranking and NDCG@10 are computed here, not by recfeat. The
protocol is the one benchmarks/bench_honest.py measures under, re-created from its
definition:

- split: random 80/20 of the ``u.data`` rows, ``np.random.default_rng(0).permutation(n)``,
  its first ``round(0.2 n)`` rows held out (rows keep file order);
- validation: the same rule applied to the training rows (seed 0); every option set is
  chosen on it, then refitted on the whole training part and measured once on the test part;
- evaluated: held-out rows whose user and item occur in training; relevant = rated >= 4
  (the default) or every held-out row (the anchor evaluator's rule), users with none dropped;
- ranking: every training item the user has not interacted with in training, full ranking,
  NDCG@10 with binary relevance, log2 discount, ideal DCG over min(relevant, 10) hits;
- ids: users and items coded in sorted (string) order, as recfeat codes them, so one
  configuration fitted here and by recfeat's ``als`` starts from the same random factors.

``--check-recfeat`` then imports recfeat (only there) to confirm that recfeat's split has the
same held-out rows and that recfeat's evaluator scores recfeat's ``als`` at one shared
configuration as this script scores it (the cross-check in the outputs). recfeat's atomic
writer writes the outputs (so an interrupted run leaves none half-written).

Search (validation NDCG@10 of both relevance rules from the same fits):
stage 1, the full grid of weighting (binary; BM25 as implicit's MovieLens example, B=0.9,
and with B=0.5 and 0)
x alpha x regularization x factors at 15 iterations; stage 2, the 4 best stage-1 options of
each rule at more iterations. Writes ``benchmarks/results/independent_als.{json,md,png}``.

    python benchmarks/peers/independent_als.py [--data-dir ../shared/data] [--check-recfeat]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "benchmarks" / "results" / "independent_als"

K = 10
SEED = 0
TEST_FRACTION = 0.2
RULES = {"rated>=4": 4.0, "all": None}
#: "bm25 B=b": implicit's bm25_weight of the item x user matrix (K1=100, implicit's examples);
#: B=0.9 is its MovieLens example, B=0 keeps the idf part only
GRID = {
    "weighting": ["binary", "bm25 B=0.9", "bm25 B=0.5", "bm25 B=0"],
    "alpha": [1.0, 3.0, 10.0, 30.0],
    "regularization": [0.01, 0.1, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0],
    "factors": [64, 128, 256],
}
BASE_ITERATIONS = 15
STAGE2_ITERATIONS = [30, 50]
STAGE2_TOP = 4
#: the configuration both this script and recfeat's ``als`` fit for the cross-check:
#: recfeat's tuned choice in benchmarks/results/honest.md (binary confidences, alpha 10)
CHECK = {"weighting": "binary", "alpha": 10.0, "regularization": 50.0, "factors": 128,
         "iterations": 15}  # fmt: skip


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- data and split --------------------------------------------------------------------------
def load_udata(data_dir: Path) -> dict[str, np.ndarray]:
    raw = np.loadtxt(data_dir / "movielens_100k" / "u.data", dtype=np.int64)
    return {"user": raw[:, 0].astype(str).astype(object),
            "item": raw[:, 1].astype(str).astype(object), "rating": raw[:, 2].astype(float)}  # fmt: skip


def take(rows: dict, index: np.ndarray) -> dict:
    return {k: v[index] for k, v in rows.items()}


def random_split(rows: dict, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) row positions: a seeded permutation's first round(0.2 n) rows held out."""
    n = len(rows["user"])
    test = np.sort(np.random.default_rng(seed).permutation(n)[: max(1, round(TEST_FRACTION * n))])
    mask = np.zeros(n, dtype=bool)
    mask[test] = True
    return np.flatnonzero(~mask), test


class Task:
    """Training matrix and the per-user relevant sets of one (train, test) pair."""

    def __init__(self, train: dict, test: dict):
        from scipy.sparse import csr_matrix

        self.users, u = np.unique(train["user"], return_inverse=True)
        self.items, i = np.unique(train["item"], return_inverse=True)
        shape = (len(self.users), len(self.items))
        self.seen = csr_matrix((np.ones(len(u), np.float32), (u, i)), shape=shape)
        ucode = {x: n for n, x in enumerate(self.users)}
        icode = {x: n for n, x in enumerate(self.items)}
        warm = [(n, ucode.get(a), icode.get(b)) for n, (a, b) in enumerate(zip(test["user"], test["item"], strict=True))]  # fmt: skip
        warm = [(n, a, b) for n, a, b in warm if a is not None and b is not None]
        self.relevant: dict[str, dict[int, np.ndarray]] = {}
        for rule, threshold in RULES.items():
            by_user: dict[int, list[int]] = {}
            for n, a, b in warm:
                if threshold is None or test["rating"][n] >= threshold:
                    by_user.setdefault(a, []).append(b)
            self.relevant[rule] = {a: np.array(b) for a, b in sorted(by_user.items())}
        self.evaluated_rows = len(warm)

    def matrix(self, weighting: str):
        from implicit.nearest_neighbours import bm25_weight

        if weighting == "binary":
            return self.seen
        # implicit's MovieLens example weights the item x user matrix (idf over users)
        b = float(weighting.split("B=")[1])
        return bm25_weight(self.seen.T.tocoo(), K1=100, B=b).T.tocsr().astype(np.float32)

    def ndcg(self, user_factors, item_factors) -> dict[str, float]:
        discounts = 1.0 / np.log2(np.arange(2, K + 2))
        users = sorted({u for rel in self.relevant.values() for u in rel})
        scores = user_factors[users] @ item_factors.T
        top: dict[int, np.ndarray] = {}
        for row, u in enumerate(users):
            s = scores[row]
            s[self.seen.indices[self.seen.indptr[u] : self.seen.indptr[u + 1]]] = -np.inf
            best = np.argpartition(-s, K)[:K]
            top[u] = best[np.argsort(-s[best], kind="stable")]
        out = {}
        for rule, relevant in self.relevant.items():
            vals = []
            for u, rel in relevant.items():
                hits = np.isin(top[u], rel)
                vals.append((hits * discounts).sum() / discounts[: min(len(rel), K)].sum())
            out[rule] = float(np.mean(vals))
        return out

    def describe(self) -> dict:
        return {"train_interactions": int(self.seen.nnz), "users": len(self.users),
                "candidates": len(self.items), "evaluated_test_rows": self.evaluated_rows,
                **{f"users_{r}": len(v) for r, v in self.relevant.items()}}  # fmt: skip


def fit(task: Task, cfg: dict, threads: int):
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    # implicit runs its own threads and warns when BLAS does too
    with threadpool_limits(1, "blas"), warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=".*OpenBLAS is configured", category=RuntimeWarning
        )
        model = AlternatingLeastSquares(
            factors=cfg["factors"], regularization=cfg["regularization"], alpha=cfg["alpha"],
            iterations=cfg["iterations"], random_state=SEED, num_threads=threads,
        )  # fmt: skip
        model.fit(task.matrix(cfg["weighting"]), show_progress=False)
    return np.asarray(model.user_factors), np.asarray(model.item_factors)


def score(task: Task, cfg: dict, threads: int) -> dict[str, float]:
    return task.ndcg(*fit(task, cfg, threads))


# -- the search ------------------------------------------------------------------------------
def search(val: Task, threads: int) -> list[dict]:
    keys = list(GRID)
    stage1 = [dict(zip(keys, v, strict=True), iterations=BASE_ITERATIONS)
              for v in itertools.product(*GRID.values())]  # fmt: skip
    trials = []
    start = time.perf_counter()
    for n, cfg in enumerate(stage1, 1):
        trials.append({"stage": 1, "options": cfg, "validation": score(val, cfg, threads)})
        if n % 24 == 0:
            log(f"stage 1: {n}/{len(stage1)} ({time.perf_counter() - start:.0f} s)")
    more = []
    for rule in RULES:
        ranked = sorted(trials, key=lambda t: -t["validation"][rule])[:STAGE2_TOP]
        for t in ranked:
            for it in STAGE2_ITERATIONS:
                cfg = {**t["options"], "iterations": it}
                if cfg not in more:
                    more.append(cfg)
    for cfg in more:
        trials.append({"stage": 2, "options": cfg, "validation": score(val, cfg, threads)})
    log(f"search: {len(trials)} configurations ({time.perf_counter() - start:.0f} s)")
    return trials


def cross_check(
    data_dir: Path, rows: dict, test_rows: np.ndarray, task: Task, threads: int
) -> dict:
    """recfeat's split and recfeat's evaluation of recfeat's ``als`` at ``CHECK`` against
    this script's split and NDCG of implicit's ALS at the same options."""
    from recfeat.evaluation.protocol import evaluate
    from recfeat.evaluation.splits import make_split
    from recfeat.plugins.datasets import load_dataset

    ml = load_dataset(data_dir / "movielens_100k", format="movielens-100k")
    same_rows = bool(
        (ml.interactions["user"].to_numpy() == rows["user"]).all()
        and (ml.interactions["item"].to_numpy() == rows["item"]).all()
    )
    split = make_split(ml.interactions, "random", seed=SEED)
    same_split = bool(np.array_equal(np.sort(split.test_rows), test_rows))
    opts = {k: v for k, v in CHECK.items() if k != "weighting"}
    mine = score(task, CHECK, threads)
    theirs = {}
    for rule, threshold in RULES.items():
        res = evaluate(ml, None, [("als", {**opts, "threads": threads})], split, k=K, seed=SEED,
                       metrics=["ndcg@k"], relevance_threshold=threshold, progress=False)  # fmt: skip
        theirs[rule] = float(res.table.iloc[0, 0])
    return {"options": CHECK, "same_rows_as_recfeat_loader": same_rows,
            "same_test_rows_as_recfeat_split": same_split, "this_script": mine,
            "recfeat_als": theirs,
            "max_abs_difference": max(abs(mine[r] - theirs[r]) for r in RULES)}  # fmt: skip


# -- outputs ---------------------------------------------------------------------------------
def fmt_options(cfg: dict) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in cfg.items())


def write_outputs(payload: dict) -> None:
    from recfeat.atomic import write_text

    write_text(OUT.with_suffix(".json"), json.dumps(payload, indent=2) + "\n")
    lines = [
        "# Independent tuning of implicit's ALS, MovieLens 100k random 80/20 (issue 25)",
        "",
        f"- Command: `{payload['command']}`",
        f"- Date: {payload['date_utc']} (UTC); wall {payload['wall_seconds']:.0f} s; implicit "
        f"{payload['versions']['implicit']}, numpy {payload['versions']['numpy']}",
        "- implicit's `AlternatingLeastSquares` used directly (no recfeat code in the search): "
        "split, ranking and NDCG@10 computed by benchmarks/peers/independent_als.py, by the "
        "protocol of benchmarks/bench_honest.py (random 80/20 of u.data, seed 0; full ranking "
        "over the training items the user has not seen; binary NDCG@10).",
        f"- Options chosen on a validation split carved from the training part "
        f"({payload['validation']['train_interactions']} / "
        f"{payload['validation']['evaluated_test_rows']} interactions, seed 0), separately for "
        f"each relevance rule, from {len(payload['trials'])} configurations "
        f"(grid: {', '.join(f'{k} {v}' for k, v in GRID.items())}, {BASE_ITERATIONS} iterations; "
        f"then the {STAGE2_TOP} best of each rule at {STAGE2_ITERATIONS} iterations); refitted on "
        "the whole training part, measured once on the test part.",
        "",
        "| relevant | chosen options (validation) | validation NDCG@10 | test NDCG@10 |",
        "|---|---|---|---|",
    ]
    for rule, r in payload["chosen"].items():
        lines.append(f"| {rule} | {fmt_options(r['options'])} | {r['validation']:.4f} | "
                     f"{r['test']:.4f} |")  # fmt: skip
    lines += ["", "Best validation NDCG@10 per weighting (the test column: that option set "
              "refitted on the whole training part):", "",
              "| relevant | weighting | options | validation | test |", "|---|---|---|---|---|"]  # fmt: skip
    for row in payload["best_per_weighting"]:
        lines.append(f"| {row['rule']} | {row['options']['weighting']} | "
                     f"{fmt_options(row['options'])} | {row['validation']:.4f} | "
                     f"{row['test']:.4f} |")  # fmt: skip
    check = payload.get("cross_check")
    if check:
        lines += [
            "",
            f"Cross-check at {fmt_options(check['options'])}: this script "
            + ", ".join(f"{r} {v:.4f}" for r, v in check["this_script"].items())
            + "; recfeat's evaluator on recfeat's `als` "
            + ", ".join(f"{r} {v:.4f}" for r, v in check["recfeat_als"].items())
            + f" (largest difference {check['max_abs_difference']:.2e}); same rows as recfeat's "
            f"loader: {check['same_rows_as_recfeat_loader']}, same held-out rows as recfeat's "
            f"split: {check['same_test_rows_as_recfeat_split']}.",
        ]
    write_text(OUT.with_suffix(".md"), "\n".join(lines) + "\n")
    plot(payload)


def plot(payload: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from recfeat.atomic import atomic_path

    fig, axes = plt.subplots(1, len(RULES), figsize=(5.5 * len(RULES), 4), squeeze=False)
    for ax, rule in zip(axes[0], RULES, strict=True):
        for weighting, marker in zip(GRID["weighting"], "osD^", strict=True):
            pts = [
                t
                for t in payload["trials"]
                if t["stage"] == 1 and t["options"]["weighting"] == weighting
            ]
            x = [t["options"]["regularization"] / t["options"]["alpha"] for t in pts]
            y = [t["validation"][rule] for t in pts]
            ax.scatter(x, y, s=10, marker=marker, alpha=0.6, label=weighting)
        ax.set_xscale("log")
        ax.set_xlabel("regularization / alpha")
        ax.set_ylabel("validation NDCG@10")
        ax.set_title(f"relevant: {rule}", fontsize=9)
        ax.legend(fontsize=8)
    fig.suptitle("implicit ALS, MovieLens 100k, stage-1 grid (independent_als.py)", fontsize=10)
    fig.tight_layout()
    with atomic_path(OUT.with_suffix(".png")) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    import importlib.metadata as md

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--threads", type=int, default=2, help="implicit's threads per fit")
    parser.add_argument("--check-recfeat", action="store_true",
                        help="cross-check the split and one configuration against recfeat")  # fmt: skip
    args = parser.parse_args(argv)
    data_dir = Path(args.data_dir)
    if not (data_dir / "movielens_100k" / "u.data").exists():
        print(f"error: {data_dir / 'movielens_100k' / 'u.data'} not found; pass --data-dir "
              "holding movielens_100k/u.data", file=sys.stderr)  # fmt: skip
        return 2
    wall = time.perf_counter()
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    rows = load_udata(data_dir)
    train_rows, test_rows = random_split(rows, SEED)
    train = take(rows, train_rows)
    fit_rows, val_rows = random_split(train, SEED)
    val = Task(take(train, fit_rows), take(train, val_rows))
    full = Task(train, take(rows, test_rows))
    log(f"validation {val.describe()}; test {full.describe()}")
    trials = search(val, args.threads)
    chosen, per_weighting, tested = {}, [], {}

    def test_of(cfg):
        key = json.dumps(cfg, sort_keys=True)
        if key not in tested:
            tested[key] = score(full, cfg, args.threads)
        return tested[key]

    for rule in RULES:
        ranked = sorted(trials, key=lambda t: -t["validation"][rule])
        best = ranked[0]
        chosen[rule] = {"options": best["options"], "validation": best["validation"][rule],
                        "test": test_of(best["options"])[rule]}  # fmt: skip
        for weighting in GRID["weighting"]:
            top = next(t for t in ranked if t["options"]["weighting"] == weighting)
            per_weighting.append({"rule": rule, "options": top["options"],
                                  "validation": top["validation"][rule],
                                  "test": test_of(top["options"])[rule]})  # fmt: skip
        log(f"{rule}: chose {fmt_options(best['options'])}: validation "
            f"{chosen[rule]['validation']:.4f}, test {chosen[rule]['test']:.4f}")  # fmt: skip
    payload = {
        "command": "python benchmarks/peers/independent_als.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "date_utc": started,
        "versions": {p: md.version(p) for p in ("implicit", "numpy", "scipy")},
        "protocol": {
            "split": "random",
            "test_fraction": TEST_FRACTION,
            "seed": SEED,
            "k": K,
            "relevance": {"rated>=4": "rated >= 4", "all": "every held-out row"},
        },  # fmt: skip
        "validation": val.describe(),
        "test": full.describe(),
        "grid": GRID,
        "stage2": {"iterations": STAGE2_ITERATIONS, "top": STAGE2_TOP},
        "trials": trials,
        "chosen": chosen,
        "best_per_weighting": per_weighting,
    }
    if args.check_recfeat:
        payload["cross_check"] = cross_check(data_dir, rows, test_rows, full, args.threads)
        log(f"cross-check: {payload['cross_check']}")
    payload["wall_seconds"] = round(time.perf_counter() - wall, 1)
    payload["load_average_end"] = list(os.getloadavg())
    write_outputs(payload)
    print(f"wrote {OUT.with_suffix('.md')} (.json, .png)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
