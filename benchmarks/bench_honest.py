"""The issue-10 targets, measured tuned-vs-tuned under the leak-free protocol.

Every model in every table, recfeat's and the peers' (implicit, LightFM, cornac), is tuned
the same way: ``evaluate(..., tune=True, tune_trials=N)`` chooses its options on a
validation split carved from the TRAINING part of the test split (recfeat.evaluation.tuning),
then refits on the whole training part and is measured once on the test part. Seed 0, k=10,
full ranking (recfeat.evaluation.protocol). Writes ``benchmarks/results/honest.{md,json,png}``.

Sections (``--only`` one or more, comma-separated):

- ``ml-random``: MovieLens 100k, random 80/20, relevant = rated >= 4 (the default): every
  ID-only ranker and rating model, recfeat's and the peers'; ``mf`` RMSE <= 0.905.
- ``ml-anchor``: the same split with every held-out interaction relevant (the rule of the
  independent evaluator whose tuned implicit ALS reached 0.435), tuned on that objective:
  recfeat's best ID-only ranker NDCG@10 >= 0.43.
- ``ml-cold``: MovieLens 100k, item cold-start (20% of items), item-level title + genres
  vectors: best text model >= 2x random and >= LightFM (``lightfm-warp-text``) on the same
  item features.
- ``mi-cold``: Musical Instruments 5-core, item cold-start with the default first-reviews
  protocol (each cold item = mean of its first 3 reviews, which leave the test set): best
  text model >= 2x random and >= 1.1x lightfm-warp-text on the same vectors; and the
  protocol check: a text-free scorer that ranks by how many reviews stand behind each
  candidate's vector (the one in tests/test_protocol_honesty.py) stays <= 1.2x random.
- ``mi-warm``: Musical Instruments, random 80/20: best recfeat text-aware model NDCG@10 >=
  1.05x the best tuned ID-only model, peers included.

The MovieLens random-split targets also set the ``implicit-als`` peer (10 trials) and
recfeat's ``als`` beside implicit's ALS tuned directly, with no recfeat code, on a far larger
grid (``benchmarks/results/independent_als.json``, made by
``benchmarks/peers/independent_als.py`` on the same split and metric; read when present).

Each model is evaluated in its own ``evaluate`` call on the same ``Split`` object and seed
(the ranking task, tie keys, validation split and tuning candidates depend only on those, so
this equals one call with every model), which gives a progress line per model and lets
``--resume`` reuse models already measured with the same trial budget (state in
``.recfeat-cache/honest_partial/SECTION.json``). ``--jobs 2`` runs sections in two processes
(the models are single-threaded, so two cores finish in about half the time). The outputs are
rewritten after every finished section, so an interrupted run leaves the finished ones.

    python benchmarks/bench_honest.py [--data-dir ../shared/data]
        [--mi-reviews /work/feats/mi_reviews.parquet] [--ml-items /work/feats/ml100k_items.parquet]
        [--only ml-random,mi-cold] [--trials N] [--resume] [--jobs 2]

Without ``--mi-reviews``/``--ml-items`` the features are extracted through
recfeat.extraction.pipeline.extract (MiniLM, bf16) into ``.recfeat-cache/``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
INDEPENDENT = RESULTS / "independent_als.json"
CACHE = REPO / ".recfeat-cache"
STATE_DIR = CACHE / "honest_partial"  # one state file per section (parallel workers)

K = 10
SEED = 0
NDCG = f"ndcg@{K}"
#: recfeat's own ID-only rankers, the peers' ID-only rankers, the text models.
RECFEAT_ID = ["popularity", "als", "bpr", "ease"]
PEER_ID = ["implicit-als", "implicit-bpr", "lightfm-warp", "cornac-bpr"]
RECFEAT_TEXT = ["content", "hybrid", "hybrid-als", "ease-text"]
PEER_TEXT = ["lightfm-warp-text"]
RATING = ["bias", "mf", "cornac-mf"]
BLIND = "review-count-scorer"
KIND = {
    **dict.fromkeys(RECFEAT_ID, "recfeat ID-only"),
    **dict.fromkeys(PEER_ID, "peer ID-only"),
    **dict.fromkeys(RECFEAT_TEXT, "recfeat text"),
    **dict.fromkeys(PEER_TEXT, "peer text"),
    **dict.fromkeys(RATING, "rating model"),
    "random": "chance",
    BLIND: "text-free blind scorer",
}
RANKING = ["ndcg@k", "recall@k", "hitrate@k"]
#: the anchor's relevance rule (every held-out interaction) costs a second tuned run; it keeps
#: recfeat's rankers, the anchor's own model (implicit-als) and the strongest peer at
#: defaults on this split (lightfm-warp, benchmarks/peers/results.md), not the weak BPRs.
ANCHOR_RUN = ["random", *RECFEAT_ID, "implicit-als", "lightfm-warp"]
#: MovieLens item cold-start: lightfm-warp-text with dense text costs about 5 minutes per fit
#: there (plugins/peers/lightfm_models.py) and hybrid about 2 under load, so EVERY model of
#: that section gets the same, smaller budget (the defaults + 2 seeded draws): equal search
#: budgets keep the comparison tuned-vs-tuned.
ML_COLD_TRIALS = 3

RUN_TITLES = {
    "rated>=4": "Relevant = rated >= 4 (the default)",
    "all": "Relevant = every held-out interaction (the anchor evaluator's rule)",
    "blind seed 0": "Protocol check: text-free review-count scorer, seed 0",
    "blind seed 1": "Protocol check: text-free review-count scorer, seed 1",
    "blind seed 2": "Protocol check: text-free review-count scorer, seed 2",
    "blind seed 0 leave-one-out": "The same scorer under the OLD leave-one-out rule (why it "
    "was replaced), seed 0",
}
SECTIONS = ("ml-random", "ml-anchor", "ml-cold", "mi-cold", "mi-warm")
TITLES = {
    "ml-random": "MovieLens 100k, random 80/20 (warm)",
    "ml-anchor": "MovieLens 100k, random 80/20 (warm), the anchor evaluator's relevance rule",
    "ml-cold": "MovieLens 100k, item cold-start, item texts (title + genres)",
    "mi-cold": "Musical Instruments 5-core, leak-free item cold-start (first-reviews)",
    "mi-warm": "Musical Instruments 5-core, random 80/20 (warm)",
}


# -- the blind scorer ------------------------------------------------------------------------
def blind_scorer_class():
    """The text-free protocol probe (recfeat.evaluation.probes): it must stay near chance."""
    from recfeat.evaluation.probes import ReviewCountScorer

    return ReviewCountScorer


def count_vectors(mi):
    """Encoder-free review vectors: hashed bag-of-words counts (what the blind scorer reads)."""
    from recfeat.evaluation.probes import count_review_vectors

    return count_review_vectors(mi)


# -- features --------------------------------------------------------------------------------
def features(given: str | None, data, level: str, cache_name: str):
    """``given`` loaded, else extracted once through the pipeline into .recfeat-cache/."""
    from recfeat.data.features import load_features

    if given:
        return load_features(given), given
    path = CACHE / cache_name
    if not path.exists():
        from recfeat.extraction.pipeline import extract
        from recfeat.extraction.stages import default_encoder

        log(f"extracting {level}-level MiniLM features of {data.name} into {path} (once)")
        extract(data, level=level, encoder=default_encoder(precision="bf16")).save(path)
    return load_features(path), str(path)


# -- progress and state ----------------------------------------------------------------------
def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


#: code every measurement runs (what ``evaluate(tune=True)`` imports, not the rest of the
#: package); each model adds its own module and what it imports from its package, so a
#: resumed run reuses a model only while none of that changed.
COMMON_CODE = ("core/evaluation/protocol.py",
               "core/evaluation/coldstart.py",
               "core/evaluation/leaks.py", "core/evaluation/splits.py",
               "core/evaluation/tuning.py", "core/components/base.py",
               "core/components/model.py", "core/components/metric.py",
               "core/components/scoring.py", "core/data", "plugins/metrics.py",
               "plugins/datasets")  # fmt: skip


def _files(entry: Path) -> list[Path]:
    return sorted(entry.rglob("*.py")) if entry.is_dir() else [entry]


def model_files(name: str) -> list[Path]:
    """``name``'s source file plus the sibling modules it imports (``from .x import``)."""
    import inspect
    import re

    from recfeat.plugin.registry import get_registry

    todo = [Path(inspect.getsourcefile(get_registry("model").get(name)))]
    seen: list[Path] = []
    while todo:
        file = todo.pop()
        if file in seen or not file.exists():
            continue
        seen.append(file)
        text = file.read_text()
        for mod in re.findall(r"^\s*from \.(\w+) import", text, re.M):
            todo.append(file.parent / f"{mod}.py")
        for pkg, mod in re.findall(r"^\s*from recfeat\.plugins\.(\w+)\.(\w+) import", text, re.M):
            todo.append(REPO / "plugins" / pkg / f"{mod}.py")
    return sorted(seen)


_FILE_HASHES: dict[Path, str] = {}


def _file_hash(file: Path) -> str:
    """A file's hash as first read in this process (see ``prime_fingerprints``)."""
    import hashlib

    if file not in _FILE_HASHES:
        _FILE_HASHES[file] = hashlib.sha256(file.read_bytes()).hexdigest()
    return _FILE_HASHES[file]


def prime_fingerprints() -> None:
    """Import the evaluation and every model now, then hash their files at once, so a
    fingerprint names the code this process runs even if the tree changes under it."""
    import recfeat.evaluation.protocol  # noqa: F401
    import recfeat.evaluation.tuning  # noqa: F401
    from recfeat.plugin.registry import get_registry

    for name in get_registry("model").names():
        get_registry("model").get(name)
    for entry in (*COMMON_CODE, "plugins/models", "plugins/peers"):
        for file in _files(REPO / entry):
            _file_hash(file)
    _file_hash(Path(__file__).resolve())  # the blind scorer lives here


def code_fingerprint(name: str, settings: dict) -> str:
    import hashlib

    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    files = [f for entry in COMMON_CODE for f in _files(REPO / entry)] + model_files(name)
    for file in files:
        digest.update(str(file).encode() + b"\0" + _file_hash(file).encode())
    return digest.hexdigest()[:16]


class State:
    """Finished (section, run, model) results, kept across invocations for ``--resume``;
    an entry counts only for the same trials, settings and code (``code_fingerprint``)."""

    def __init__(self, path: Path, resume: bool):
        self.path = path
        self.data: dict = {}
        if resume and path.exists():
            self.data = json.loads(path.read_text(encoding="utf-8"))

    def get(self, key: str, code: str):
        hit = self.data.get(key)
        return hit if hit and hit.get("code") == code else None

    def put(self, key: str, code: str, value: dict) -> None:
        from recfeat.atomic import write_text
        from recfeat.jsonable import jsonable

        self.data[key] = {"code": code, **value}
        write_text(self.path, json.dumps(jsonable(self.data)) + "\n")


# -- running one table -------------------------------------------------------------------------
def run_table(ctx, section: str, run: str, data, feats, models, split, *, relevance,
              metrics, seed=SEED, max_trials=None, **evaluate_options) -> dict:  # fmt: skip
    """Evaluate ``models`` one call each (tuned) and merge them into one table's dict.
    ``max_trials``: at most this many tuning candidates for every model of the table."""
    from recfeat.evaluation.protocol import evaluate

    out = {"models": {}, "info": None}
    for n, model in enumerate(models, 1):
        key = f"{section}/{run}/{model}"
        trials = min(ctx.trials, max_trials or ctx.trials)
        settings = {"trials": trials, "relevance": relevance, "metrics": metrics, "seed": seed,
                    "split": split.report, "features": ctx.feature_ids(feats), **evaluate_options}  # fmt: skip
        code = code_fingerprint(model, settings)
        done = ctx.state.get(key, code)
        if done is None:
            log(f"{section} [{run}] {n}/{len(models)} {model}: tuning ({trials} trials) + fit")
            start = time.perf_counter()
            res = evaluate(data, feats, [model], split, k=K, seed=seed, metrics=metrics,
                           relevance_threshold=relevance, tune=True, tune_trials=trials,
                           progress=ctx.progress, **evaluate_options)  # fmt: skip
            info = res.to_dict()
            row = info.pop("models")[model]
            tuning = info.pop("tuning", {})
            done = {"info": info, "row": row, "tuning": tuning.get("models", {}).get(model),
                    "validation_split": tuning.get("validation_split"),
                    "wall_s": round(time.perf_counter() - start, 1),
                    "measured_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
                    "load_1min": round(os.getloadavg()[0], 1)}  # fmt: skip
            ctx.state.put(key, code, done)
            shown = ", ".join(f"{m} {_fmt(v)}" for m, v in row["metrics"].items())
            log(f"{section} [{run}] {model}: {shown} ({done['wall_s']:.0f} s)")
        else:
            log(f"{section} [{run}] {model}: reused from {ctx.state.path.name}")
        out["info"] = out["info"] or {**done["info"], "validation_split": done["validation_split"]}
        out["models"][model] = {**done["row"], "tuning": done["tuning"], "wall_s": done["wall_s"],
                                "measured_utc": done.get("measured_utc"),
                                "load_1min": done.get("load_1min"),
                                "kind": KIND.get(model, "")}  # fmt: skip
    return out


def _fmt(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.4f}"


def section_ml_random(ctx) -> dict:
    from recfeat.evaluation.splits import make_split

    ml = ctx.movielens()
    split = make_split(ml.interactions, "random", seed=SEED)
    rankers = ["random", *RECFEAT_ID, *PEER_ID]
    return {"rated>=4": run_table(ctx, "ml-random", "rated>=4", ml, None, rankers + RATING,
                                  split, relevance=4.0, metrics=[*RANKING, "rmse"])}  # fmt: skip


def section_ml_anchor(ctx) -> dict:
    """The same split, relevant = every held-out interaction, tuned on that objective."""
    from recfeat.evaluation.splits import make_split

    ml = ctx.movielens()
    split = make_split(ml.interactions, "random", seed=SEED)
    return {"all": run_table(ctx, "ml-anchor", "all", ml, None, ANCHOR_RUN, split,
                             relevance=None, metrics=RANKING)}  # fmt: skip


def section_ml_cold(ctx) -> dict:
    from recfeat.evaluation.splits import make_split

    ml = ctx.movielens()
    feats = ctx.ml_items()
    split = make_split(ml.interactions, "item-cold", seed=SEED)
    models = ["random", *RECFEAT_TEXT, *PEER_TEXT]
    return {"rated>=4": run_table(ctx, "ml-cold", "rated>=4", ml, feats, models, split,
                                  relevance=4.0, metrics=RANKING, max_trials=ML_COLD_TRIALS)}  # fmt: skip


def section_mi_cold(ctx) -> dict:
    from recfeat.evaluation.splits import make_split
    from recfeat.plugin.registry import get_registry

    mi = ctx.instruments()
    feats = ctx.mi_reviews()
    split = make_split(mi.interactions, "item-cold", seed=SEED)
    models = ["random", *RECFEAT_TEXT, *PEER_TEXT]
    out = {"rated>=4": run_table(ctx, "mi-cold", "rated>=4", mi, feats, models, split,
                                 relevance=4.0, metrics=RANKING)}  # fmt: skip
    registry = get_registry("model")
    if BLIND not in registry:
        registry.register(blind_scorer_class())
    counts = count_vectors(mi)
    blind = ["random", BLIND]
    for seed in (0, 1, 2):  # one tie-broken draw is noisy: the chance ratio is also averaged
        s = make_split(mi.interactions, "item-cold", seed=seed)
        out[f"blind seed {seed}"] = _blind(ctx, mi, counts, blind, s, seed)
    out["blind seed 0 leave-one-out"] = _blind(ctx, mi, counts, blind, split, 0, relevance=None,
                                        cold_protocol="leave-one-out")  # fmt: skip
    return out


def _blind(ctx, mi, counts, models, split, seed, relevance=4.0, **options):
    """The blind scorer beside random on ``split`` (made with ``seed``, evaluated with it)."""
    run = f"blind seed {seed}" + (f" {options['cold_protocol']}" if options else "")
    return run_table(ctx, "mi-cold", run, mi, counts, models, split, relevance=relevance,
                     metrics=["ndcg@k"], seed=seed, **options)  # fmt: skip


def section_mi_warm(ctx) -> dict:
    from recfeat.evaluation.splits import make_split

    mi = ctx.instruments()
    feats = ctx.mi_reviews()
    split = make_split(mi.interactions, "random", seed=SEED)
    models = ["random", *RECFEAT_ID, *PEER_ID, *RECFEAT_TEXT, *PEER_TEXT]
    return {"rated>=4": run_table(ctx, "mi-warm", "rated>=4", mi, feats, models, split,
                                  relevance=4.0, metrics=RANKING)}  # fmt: skip


RUNNERS = {
    "ml-random": section_ml_random,
    "ml-anchor": section_ml_anchor,
    "ml-cold": section_ml_cold,
    "mi-cold": section_mi_cold,
    "mi-warm": section_mi_warm,
}


class Context:
    """Data and features, loaded once on first use."""

    def __init__(self, args, state):
        self.args, self.state, self.trials = args, state, args.trials
        self.progress = True if sys.stderr.isatty() else None
        self._cache: dict = {}
        self.feature_paths: dict[str, str] = {}

    def feature_ids(self, feats) -> str | None:
        """What identifies ``feats`` for --resume: its file, or its encoder when built here."""
        if feats is None:
            return None
        return str(feats.manifest.get("path") or feats.manifest.get("encoder"))

    def _once(self, key, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def movielens(self):
        from recfeat.plugins.datasets import load_dataset

        path = Path(self.args.data_dir) / "movielens_100k"
        return self._once("ml", lambda: load_dataset(path, format="movielens-100k"))

    def instruments(self):
        from recfeat.plugins.datasets import load_dataset

        path = Path(self.args.data_dir) / "amazon_musical_instruments_5"
        return self._once("mi", lambda: load_dataset(path, format="amazon"))

    def ml_items(self):
        def make():
            feats, path = features(self.args.ml_items, self.movielens(), "item",
                                   "ml100k_items_minilm_bf16.parquet")  # fmt: skip
            self.feature_paths["ml_items"] = path
            return feats

        return self._once("ml_items", make)

    def mi_reviews(self):
        def make():
            feats, path = features(self.args.mi_reviews, self.instruments(), "review",
                                   "mi_reviews_minilm_bf16.parquet")  # fmt: skip
            self.feature_paths["mi_reviews"] = path
            return feats

        return self._once("mi_reviews", make)


# -- targets ---------------------------------------------------------------------------------
def metric(table: dict, model: str, name: str) -> float:
    """``model``'s ``name`` in ``table``; NaN when missing or n/a (every comparison fails)."""
    value = table["models"].get(model, {}).get("metrics", {}).get(name)
    return float("nan") if value is None else float(value)


def ndcg(table: dict, model: str) -> float:
    return metric(table, model, NDCG)


def best(table: dict, models, metric=NDCG, lowest=False) -> tuple[str, float]:
    vals = {m: table["models"][m]["metrics"].get(metric) for m in models if m in table["models"]}
    vals = {m: v for m, v in vals.items() if v is not None and not np.isnan(v)}
    if not vals:
        return "none", float("nan")
    pick = (min if lowest else max)(vals, key=vals.get)
    return pick, float(vals[pick])


def protocol_text(table: dict, tuned: bool = True, short: bool = False) -> str:
    """Split, relevance, candidates, cold-start representation and tuning of one table."""
    info = table["info"]
    split, ranking = info["split"], info["ranking"]
    kind = split.get("split", "?")
    what = {"random": "random 80/20", "item-cold": "item cold-start (20% of items held out)"}
    cold = info.get("cold_start") or {}
    trials = max((r.get("tuning") or {}).get("trials_run", 0) for r in table["models"].values())
    val = info.get("validation_split") or {}
    if short:
        cold_short = {
            "first-reviews": f"cold item = mean of its first {cold.get('cold_reviews')} reviews "
            "(removed from the test)",
            "item-text": "cold item = its item-text vector",
            "leave-one-out": "cold item = leave-one-out mean of reviews (OLD, leaky rule)",
        }.get(cold.get("protocol"), "warm")
        cands = (
            f"{ranking['candidates']} cold candidates"
            if kind == "item-cold"
            else f"all {ranking['candidates']} training items not seen"
        )
        rel = "rated >= 4" if info.get("relevance_threshold") else "every held-out"
        tune = f"tuned, {trials} trials" if tuned else "nothing to tune"
        return f"{what.get(kind, kind)}, seed {info['seed']}; {rel}; {cands}; {cold_short}; {tune}"
    parts = [
        f"{what.get(kind, kind)} split, seed {info['seed']} ({split.get('train_interactions')} "
        f"train / {split.get('evaluated_test_interactions')} evaluated test interactions)",
        f"relevant: {info['relevance']}",
        f"candidates: {ranking['candidate_set']} ({ranking['candidates']} items, "
        f"{ranking['users']} users)",
    ]
    if cold:
        parts.append(f"cold items: {cold['representation']}")
    if info.get("features", {}).get("item_features"):
        parts.append(f"text: {info['features']['item_features']}")
    if tuned:
        parts.append(
            f"tuned: up to {trials} candidates per model on a {val.get('split', kind)} "
            f"validation split of the training part ({val.get('train_interactions')} / "
            f"{val.get('test_interactions')} interactions)"
        )
    return "; ".join(parts)


def target(name, met, measured, ratio, margin, protocol) -> dict:
    return {"target": name, "met": None if met is None else bool(met), "measured": measured,
            "ratio": ratio, "margin": margin, "protocol": protocol}  # fmt: skip


def independent_als(path: Path = INDEPENDENT) -> dict | None:
    """implicit's ALS tuned directly (benchmarks/peers/independent_als.py), when its results
    exist and were made on this benchmark's split (random 80/20, seed, k); else None."""
    if not path.exists():
        return None
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
        proto = found["protocol"]
        same = (proto["split"], proto["seed"], proto["k"], proto["test_fraction"]) == (
            "random",
            SEED,
            K,
            0.2,
        )
        return found if same and set(found["chosen"]) >= {"rated>=4", "all"} else None
    except (ValueError, KeyError, TypeError):
        log(f"ignoring {path}: not the output of benchmarks/peers/independent_als.py")
        return None


def als_three_ways(table: dict, rule: str, ind: dict | None, label: str):
    """implicit-als (the peer) and recfeat's als beside implicit tuned directly."""
    if ind is None or "implicit-als" not in table["models"]:
        return None
    peer, als = ndcg(table, "implicit-als"), ndcg(table, "als")
    direct = ind["chosen"][rule]
    dv = float(direct["test"])

    def trials(model):
        return (table["models"][model].get("tuning") or {}).get("trials_run", 0)

    opts = ", ".join(f"{k}={v}" for k, v in direct["options"].items())
    return target(
        f"(same split, {label}) implicit's ALS three ways: the implicit-als peer and recfeat's "
        "als (both tuned here) vs implicit tuned directly, no recfeat code "
        "(benchmarks/peers/independent_als.py)", None,
        f"implicit-als {peer:.4f} ({trials('implicit-als')} trials), als {als:.4f} "
        f"({trials('als')} trials), implicit tuned directly {dv:.4f} ({len(ind['trials'])} "
        f"configurations on validation; chose {opts})",
        f"implicit-als {peer / dv:.3f}x, als {als / dv:.3f}x the direct tuning",
        f"implicit-als {peer - dv:+.4f}, als {als - dv:+.4f}",
        protocol_text(table, short=True))  # fmt: skip


def check_targets(results: dict) -> list[dict]:
    out = []
    ind = independent_als()
    if "ml-anchor" in results:
        anchor = results["ml-anchor"]["all"]
        m, v = best(anchor, RECFEAT_ID)
        pm, pv = best(anchor, PEER_ID)
        out.append(target(
            "MovieLens 100k random 80/20: recfeat's best ID-only ranker NDCG@10 >= 0.43 "
            "(anchor: an independent evaluator's tuned implicit ALS, 0.435)",
            v >= 0.43, f"{m} {v:.4f} vs 0.43 (best tuned peer here: {pm} {pv:.4f})",
            f"{v / 0.43:.3f}x the bar, {v / 0.435:.3f}x the anchor 0.435, {v / pv:.3f}x {pm}",
            f"{v - 0.43:+.4f}",
            protocol_text(anchor, short=True)))  # fmt: skip
        out.append(als_three_ways(anchor, "all", ind, "every held-out relevant"))
    if "ml-random" in results:
        head = results["ml-random"]["rated>=4"]
        m4, v4 = best(head, RECFEAT_ID)
        pm4, pv4 = best(head, PEER_ID)
        out.append(target(
            "(same split, default relevance) recfeat's best ID-only ranker vs the best tuned peer",
            None, f"{m4} {v4:.4f} vs {pm4} {pv4:.4f}", f"{v4 / pv4:.3f}x", f"{v4 - pv4:+.4f}",
            protocol_text(head, short=True)))  # fmt: skip
        out.append(als_three_ways(head, "rated>=4", ind, "default relevance"))
        rmse = metric(head, "mf", "rmse")
        cm = metric(head, "cornac-mf", "rmse")
        out.append(target(
            "MovieLens 100k random 80/20: mf RMSE <= 0.905", rmse <= 0.905,
            f"mf RMSE {rmse:.4f} vs 0.905 (tuned cornac-mf {_fmt(cm)}, bias "
            f"{_fmt(metric(head, 'bias', 'rmse'))})",
            f"{rmse / 0.905:.3f}x the bar", f"{0.905 - rmse:+.4f} below",
            protocol_text(head, short=True).split("; ")[0] + "; every test pair (RMSE); "
            "tuned on validation RMSE"))  # fmt: skip
    for key, label, factor in (("ml-cold", "MovieLens 100k item cold-start (title + genres)", 1.0),
                               ("mi-cold", "Musical Instruments leak-free item cold-start", 1.1)):  # fmt: skip
        if key not in results:
            continue
        table = results[key]["rated>=4"]
        m, v = best(table, RECFEAT_TEXT)
        rnd = ndcg(table, "random")
        chance = table["info"]["ranking"][f"expected_random_ndcg@{K}"]
        bar = max(rnd, chance)
        lf = ndcg(table, "lightfm-warp-text")
        out.append(target(
            f"{label}: best text model NDCG@10 >= 2x random", v >= 2 * bar,
            f"{m} {v:.4f} vs random {rnd:.4f} (exact chance level {chance:.4f})",
            f"{v / bar:.2f}x", f"{v - 2 * bar:+.4f} over 2x", protocol_text(table, short=True)))  # fmt: skip
        bar_txt = "LightFM" if factor == 1.0 else f"{factor:g}x LightFM"
        out.append(target(
            f"{label}: best text model NDCG@10 >= {bar_txt} (lightfm-warp-text, same item vectors)",
            v >= factor * lf, f"{m} {v:.4f} vs lightfm-warp-text {lf:.4f}",
            f"{v / lf:.3f}x", f"{v - factor * lf:+.4f} over {factor:g}x", protocol_text(table, short=True)))  # fmt: skip
    if "mi-cold" in results:
        runs = results["mi-cold"]
        seeds = [runs[f"blind seed {s}"] for s in (0, 1, 2)]
        b0, r0 = ndcg(seeds[0], BLIND), ndcg(seeds[0], "random")
        to_chance = [ndcg(t, BLIND) / t["info"]["ranking"][f"expected_random_ndcg@{K}"]
                     for t in seeds]  # fmt: skip
        loo = runs["blind seed 0 leave-one-out"]
        lb = ndcg(loo, BLIND) / loo["info"]["ranking"][f"expected_random_ndcg@{K}"]
        out.append(target(
            "Musical Instruments leak-free item cold-start: a text-free review-count scorer "
            "stays <= 1.2x random", b0 <= 1.2 * r0 and np.mean(to_chance) <= 1.2,
            f"{BLIND} {b0:.4f} vs random {r0:.4f} at seed 0; to exact chance "
            f"{', '.join(f'{x:.2f}x' for x in to_chance)} at seeds 0-2 (mean "
            f"{np.mean(to_chance):.2f}x); under the old leave-one-out rule it reaches {lb:.2f}x "
            "chance (relevant: every held-out interaction)",
            f"{b0 / r0:.2f}x", f"{1.2 * r0 - b0:+.4f} under 1.2x",
            protocol_text(seeds[0], tuned=False, short=True) + "; vectors: hashed word counts (64 dims) of each review, which the scorer reads "
            "only to count reviews"))  # fmt: skip
    if "mi-warm" in results:
        table = results["mi-warm"]["rated>=4"]
        m, v = best(table, RECFEAT_TEXT)
        im, iv = best(table, RECFEAT_ID + PEER_ID)
        pt = ndcg(table, "lightfm-warp-text")
        out.append(target(
            "Musical Instruments random 80/20: best recfeat text-aware model NDCG@10 >= 1.05x "
            "the best tuned ID-only model (peers included)", v >= 1.05 * iv,
            f"{m} {v:.4f} vs {im} {iv:.4f} (peer text model lightfm-warp-text {pt:.4f})",
            f"{v / iv:.3f}x", f"{v - 1.05 * iv:+.4f} over 1.05x", protocol_text(table, short=True)))  # fmt: skip
    return [t for t in out if t is not None]


# -- outputs ---------------------------------------------------------------------------------
def environment(wall: float, loads: list) -> dict:
    import importlib.metadata as md

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for pkg in ("numpy", "scipy", "scikit-learn", "torch", "implicit", "lightfm", "cornac"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    return {
        "cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
        "versions": versions, "load_average": loads, "wall_seconds": round(wall, 1),
        "note": "machine shared with other work while measuring (see load averages); fit and "
                "tuning times are indicative only",
    }  # fmt: skip


def chosen(row: dict) -> str:
    t = row.get("tuning") or {}
    if t.get("status") != "tuned":
        return f"not tuned ({t.get('reason', '?')})"
    return ", ".join(f"{k}={v}" for k, v in (t.get("chosen") or {}).items()) or "defaults"


def _when(row: dict) -> str:
    when = (row.get("measured_utc") or "-")[11:] or "-"
    load = row.get("load_1min")
    return when if load is None else f"{when} ({load})"


def table_markdown(table: dict) -> list[str]:
    metrics = list(next(iter(table["models"].values()))["metrics"])
    head = ["model", "kind", *metrics, "chosen options (validation)", "val. score (as given)",
            "trials", "fit s", "tune s", "measured (UTC, load)"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for model, row in table["models"].items():
        t = row.get("tuning") or {}
        vals = []
        for m in metrics:
            v = row["metrics"][m]
            reason = row.get("not_applicable", {}).get(m)
            vals.append(reason if reason else _fmt(v))
        val = (f"{t['objective']} {_fmt(t.get('validation_score'))} ({_fmt(t.get('default_score'))})"
               if t.get("status") == "tuned" else "-")  # fmt: skip
        lines.append("| " + " | ".join([model, row["kind"], *vals, chosen(row), val,
                                        str(t.get("trials_run", 0)), f"{row['fit_seconds']:.1f}",
                                        f"{t.get('seconds', 0):.0f}",
                                        _when(row)]) + " |")  # fmt: skip
    return lines


def _argv_without_only(argv: list[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--only":
            skip = True
        elif not arg.startswith("--only=") and arg != "--resume":
            out.append(arg)
    return out


def measured_range(results) -> str:
    times = sorted(
        row["measured_utc"]
        for runs in results.values()
        for table in runs.values()
        for row in table["models"].values()
        if row.get("measured_utc")
    )
    return f"{times[0]} to {times[-1][11:]}" if times else "-"


def write_outputs(stem: Path, results, targets, env, args, paths, missing) -> None:
    from recfeat.atomic import write_text
    from recfeat.jsonable import jsonable

    command = "python benchmarks/bench_honest.py " + " ".join(args.argv)
    payload = {"command": command.strip(), "date_utc": args.started, "trials": args.trials,
               "k": K, "seed": SEED, "environment": env, "features": paths,
               "targets": targets, "sections_not_run": missing, "results": results}  # fmt: skip
    write_text(stem.with_suffix(".json"), json.dumps(jsonable(payload), indent=2) + "\n")
    loads = "; ".join(f"{w}: {la}" for w, la in env["load_average"])
    lines = [
        "# Honest evaluation, tuned vs tuned (issue 10)",
        "",
        f"- Command: `{command.strip()}`",
        f"- Date: {args.started} (UTC); wall {env['wall_seconds']:.0f} s",
        f"- Machine: {env['cpu']}, {env['cores']} cores; Python {env['python']}; "
        + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v),
        f"- Load average (1/5/15 min) of this invocation {loads}. {env['note']}.",
        f"- Models measured {measured_range(results)} UTC (each table gives every model's time "
        "and 1-minute load; with `--resume` a model is reused only when its code, data, "
        "features and settings are unchanged).",
        f"- Features: {', '.join(f'{k} = `{v}`' for k, v in paths.items()) or 'none'}"
        " (all-MiniLM-L6-v2)",
        f"- Every model, recfeat's and the peers', is tuned with `evaluate(..., tune=True, "
        f"tune_trials={args.trials})` (MovieLens item cold-start: {min(args.trials, ML_COLD_TRIALS)} "
        "for every model of that section, see there): options chosen on a validation split carved from the "
        "training part (same kind of split, seed 0; objective NDCG@10, RMSE for rating models), "
        "then refitted on the whole training part and measured once on the test part. Seed 0, "
        "k=10, full ranking (no sampled negatives), ties broken by a seeded random key.",
        "",
    ]
    if missing:
        rest = _argv_without_only(args.argv) + ["--only", ",".join(missing), "--resume"]
        lines += [f"**Not run in this invocation: {', '.join(missing)}** (run "
                  f"`python benchmarks/bench_honest.py {' '.join(rest)}`).", ""]  # fmt: skip
    lines += ["## Targets", "", "| | target | measured | ratio | margin | protocol |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for t in targets:
        status = "info" if t["met"] is None else "PASS" if t["met"] else "MISS"
        lines.append(f"| **{status}** | {t['target']} | {t['measured']} | {t['ratio']} | "
                     f"{t['margin']} | {t['protocol']} |")  # fmt: skip
    lines += [""]
    for section, runs in results.items():
        lines += [f"## {TITLES[section]}", ""]
        if section == "ml-cold":
            lines += [f"Every model here gets at most {min(args.trials, ML_COLD_TRIALS)} tuning "
                      "candidates (the defaults + seeded draws): lightfm-warp-text with dense "
                      "text costs about 5 minutes per fit on MovieLens 100k, so the budget is "
                      "cut for all models alike.", ""]  # fmt: skip
        for run, table in runs.items():
            lines += [
                f"### {RUN_TITLES.get(run, run)}",
                "",
                f"Protocol: {protocol_text(table)}.",
                "",
            ]
            chance = table["info"]["ranking"][f"expected_random_ndcg@{K}"]
            checks = "; ".join(
                f"{name} {v.get('status')}"
                for name, v in (table["info"].get("leaks") or {}).items()
            )
            lines += [f"Exact chance NDCG@10 {chance:.4f}. Leak checks: {checks or 'none'}.", ""]
            lines += table_markdown(table) + [""]
            for model, row in table["models"].items():
                lines += [f"- note [{model}]: {n}" for n in row.get("notes", [])[1:]]
            lines.append("")
    lines += [
        "## Reading the tables",
        "",
        "- kind: `recfeat ID-only` (popularity, als, bpr, ease), `peer ID-only` (implicit-als, "
        "implicit-bpr, lightfm-warp, cornac-bpr: the libraries' documented configurations as "
        "the starting point of their search), `recfeat text`, `peer text` (lightfm-warp-text: "
        "LightFM with item features = identity + the same text vectors), `chance` (random).",
        "- chosen options: the searched options' values picked on validation (the rest are the "
        "model's defaults); val. score: validation objective of the chosen options, and in "
        "parentheses of the defaults; tune s: wall time of the search.",
        "- 2x random uses the larger of the random model's NDCG@10 and the exact chance level.",
        "- implicit's ALS three ways (targets): the `implicit-als` peer and recfeat's `als` "
        "are tuned here like every model; the third figure is implicit's ALS tuned directly "
        "on a far larger grid, with its own split, ranking and NDCG code "
        "([independent_als.md](independent_als.md), which also cross-checks that code against "
        "recfeat's evaluator at one configuration).",
        "- Rating models (bias, mf, cornac-mf) are n/a in ranking columns; ranking models have "
        "no RMSE.",
        "",
    ]
    write_text(stem.with_suffix(".md"), "\n".join(lines) + "\n")
    plot(stem.with_suffix(".png"), results)


def _bar_lightfm(factor):
    return lambda t: (factor * ndcg(t, "lightfm-warp-text"), f"{factor:g}x lightfm-warp-text")


def _bar_id(t):
    return 1.05 * best(t, RECFEAT_ID + PEER_ID)[1], "1.05x best ID-only"


#: (section, run, metric, title, target line: a number or table -> (value, label))
PANELS = [
    ("ml-anchor", "all", NDCG, "ML-100k random: NDCG@10\n(relevant: every held-out)", 0.43),
    ("ml-random", "rated>=4", "rmse", "ML-100k random: RMSE", 0.905),
    ("ml-cold", "rated>=4", NDCG, "ML-100k item cold-start: NDCG@10", _bar_lightfm(1.0)),
    (
        "mi-cold",
        "rated>=4",
        NDCG,
        "Musical Instr. cold (first-reviews): NDCG@10",
        _bar_lightfm(1.1),
    ),
    ("mi-warm", "rated>=4", NDCG, "Musical Instr. warm: NDCG@10", _bar_id),
]
COLORS = {"recfeat ID-only": "#3b75af", "peer ID-only": "#e08b3a", "recfeat text": "#2e9a5e",
          "peer text": "#c44e52", "rating model": "#7f7f7f", "chance": "#bbbbbb",
          BLIND: "#9467bd"}  # fmt: skip


def plot(path: Path, results) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from recfeat.atomic import atomic_path

    panels = [p for p in PANELS if p[0] in results]
    if not panels:
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 5.2), squeeze=False)
    for ax, (section, run, metric, title, line) in zip(axes[0], panels, strict=True):
        table = results[section][run]
        rows = [(m, r) for m, r in table["models"].items() if r["metrics"].get(metric) is not None]
        names = [m for m, _ in rows]
        vals = [float(r["metrics"][metric]) for _, r in rows]
        y = np.arange(len(rows))
        ax.barh(y, vals, color=[COLORS.get(r["kind"], "#333333") for _, r in rows])
        for yy, v in zip(y, vals, strict=True):
            ax.text(v, yy, f" {v:.3f}", va="center", fontsize=7)
        ax.set_yticks(y, labels=names, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=9)
        if metric == NDCG and "random" in table["models"]:
            rnd = max(ndcg(table, "random"),
                      table["info"]["ranking"][f"expected_random_ndcg@{K}"])  # fmt: skip
            ax.axvline(2 * rnd, color="#555555", ls=":", lw=1, label="2x random")
        if line is not None:
            value, label = line(table) if callable(line) else (line, f"target {line:g}")
            ax.axvline(value, color="#c44e52", ls="--", lw=1, label=label)
        if metric == "rmse" and vals:
            ax.set_xlim(min(vals) - 0.03, max(vals) + 0.03)
        ax.legend(fontsize=7, loc="lower right")
    handles = [matplotlib.patches.Patch(color=c, label=k) for k, c in COLORS.items()
               if k not in (BLIND,)]  # fmt: skip
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8)
    fig.suptitle("Tuned vs tuned, seed 0, k=10 (benchmarks/bench_honest.py)", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


# -- main ------------------------------------------------------------------------------------
def parse_only(text: str | None) -> list[str]:
    from recfeat.errors import UsageError

    if not text:
        return list(SECTIONS)
    picked = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in picked if s not in SECTIONS]
    if bad or not picked:
        raise UsageError(f"--only: unknown section(s) {', '.join(bad) or '(none)'}; use one or "
                         f"more of {', '.join(SECTIONS)}, comma-separated")  # fmt: skip
    return [s for s in SECTIONS if s in picked]


def run_section(args, section: str):
    """One section in this process: (results, feature paths, load after)."""
    log(f"section {section}: {TITLES[section]} (load {_load()})")
    prime_fingerprints()
    ctx = Context(args, State(STATE_DIR / f"{section}.json", args.resume))
    results = RUNNERS[section](ctx)
    log(f"section {section} done (load {_load()})")
    return results, ctx.feature_paths, _load()


#: the slowest section first, then the cheap ones with the most targets (a run cut short
#: by time still has them)
COST_ORDER = ("ml-cold", "mi-cold", "ml-anchor", "mi-warm", "ml-random")
NEEDS = {"ml-cold": "ml_items", "mi-cold": "mi_reviews", "mi-warm": "mi_reviews"}


def prepare_features(args, sections) -> None:
    """Extract missing features once, here, before any worker needs them."""
    ctx = Context(args, None)  # only loads features
    needed = {NEEDS[s] for s in sections if s in NEEDS}
    if "ml_items" in needed and not args.ml_items:
        ctx.ml_items()
        args.ml_items = ctx.feature_paths["ml_items"]
    if "mi_reviews" in needed and not args.mi_reviews:
        ctx.mi_reviews()
        args.mi_reviews = ctx.feature_paths["mi_reviews"]


def main(argv=None) -> int:
    from recfeat.evaluation.tuning import DEFAULT_TRIALS, check_trials

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument(
        "--mi-reviews", default=None, help="review-level features of Musical Instruments (parquet)"
    )
    parser.add_argument(
        "--ml-items",
        default=None,
        help="item-level title+genres features of MovieLens 100k (parquet)",
    )
    parser.add_argument(
        "--only", default=None, help=f"sections, comma-separated: {', '.join(SECTIONS)}"
    )
    parser.add_argument(
        "--trials",
        type=int,
        default=DEFAULT_TRIALS,
        help=f"tuning candidates per model (default {DEFAULT_TRIALS})",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help=f"reuse models already measured with the same --trials ({STATE_DIR})",
    )
    parser.add_argument("--jobs", type=int, default=1, help="sections run in parallel processes")
    parser.add_argument(
        "--out", default=str(RESULTS / "honest"), help="output stem (.md/.json/.png)"
    )
    args = parser.parse_args(argv)  # fmt: skip
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    from recfeat.errors import DataError, RecfeatError, UsageError

    try:
        check_trials(args.trials)
        if args.jobs < 1:
            raise UsageError(f"--jobs must be at least 1 (got {args.jobs})")
        sections = parse_only(args.only)
        for path in (args.mi_reviews, args.ml_items):
            if path and not Path(path).exists():
                raise DataError(f"features file {path} does not exist; pass an existing "
                                "parquet or drop the option to extract one")  # fmt: skip
        prepare_features(args, sections)
        wall = time.perf_counter()
        loads = [("start", _load())]
        done: dict = {}
        paths: dict = {}

        def finished(section, outcome):
            done[section], found, load = outcome
            paths.update(found)
            loads.append((f"after {section}", load))
            ordered = {s: done[s] for s in SECTIONS if s in done}
            targets = check_targets(ordered)
            env = environment(time.perf_counter() - wall, loads)
            missing = [s for s in SECTIONS if s not in done]
            write_outputs(Path(args.out), ordered, targets, env, args, paths, missing)
            log(f"wrote {Path(args.out).with_suffix('.md')} ({len(done)}/{len(sections)} sections)")
            return targets

        targets = []
        todo = [s for s in COST_ORDER if s in sections]
        if args.jobs == 1 or len(todo) == 1:
            for section in [s for s in SECTIONS if s in sections]:
                targets = finished(section, run_section(args, section))
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor, as_completed

            spawn = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(min(args.jobs, len(todo)), mp_context=spawn) as pool:
                futures = {pool.submit(run_section, args, s): s for s in todo}
                for future in as_completed(futures):
                    targets = finished(futures[future], future.result())
    except RecfeatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 1)
    for t in targets:
        status = "info" if t["met"] is None else "PASS" if t["met"] else "MISS"
        print(f"{status} {t['target']}: {t['measured']} ({t['ratio']}, margin {t['margin']})")
    print(f"wrote {Path(args.out).with_suffix('.md')} (.json, .png)")
    return 0


def _load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    raise SystemExit(main())
