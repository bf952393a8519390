"""Next-item recommendation with text (issue 23): the leave-last-out protocol, tuned models,
a RecBole peer, paired intervals, and the published figures beside them.

Sections (each over seeds 0-2 unless said otherwise):

- ``mi``: Musical Instruments 5-core, leave-last-out (review-level MiniLM vectors; an item's
  vector is the mean of its TRAINING reviews, so the test review never reaches a model);
- ``ml100k`` / ``mll``: MovieLens 100k / latest-small, leave-last-out (item vectors of title +
  genres (+ tags));
- ``mi-new`` / ``ml100k-new``: the new-item variant (``leave-last-out-new``): the test item is
  in no training sequence, candidates are the held-out items; a new MI item is the mean of its
  first 3 reviews (recfeat.evaluation.coldstart).

Every cell is ``recfeat.evaluate(..., tune=True)`` (validation = each user's second-last
interaction), relevance = every held-out interaction (as the sequential literature counts),
full ranking, NDCG@10 / Recall@10 / MRR. The peer: RecBole's SASRec through its own data
files on exactly the same split (benchmarks/peer_recbole.py, run in its own venv, default
``/work/recbole-venv``; ``--recbole-python`` says where).

Run: ``python benchmarks/bench_sequential.py`` (resumable: finished cells are kept in
``.recfeat-cache/seq_bench/``), then ``--report-only`` to write
``benchmarks/results/sequential.{md,json,png}``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import bench_finetune as ft  # noqa: E402  (State, log: one resumable-state style)
import bench_honest as honest  # noqa: E402  (environment(), chosen(): one report style)

RESULTS = REPO / "benchmarks" / "results"
CACHE = REPO / ".recfeat-cache" / "seq_bench"
K = 10
METRICS = ("ndcg@10", "recall@10", "mrr")
NDCG = "ndcg@10"
#: extraction for every section alike (as bench_finetune's frozen encoder)
EXTRACT = ft.EXTRACT
WARM_MODELS = ("popularity", "item-knn-last", "text-knn-last", "ease", "ease-text", "sasrec",
               "sasrec-text")  # fmt: skip
NEW_MODELS = ("text-knn-last", "content", "ease-text", "sasrec-text")
NEURAL = ("sasrec", "sasrec-text")
#: (section, model) -> tuning trials at most (1: its defaults; 0: not run). On MovieLens
#: every user has 20 to 700+ interactions, so one SASRec epoch is ~100k positions x a softmax
#: over every item: about 10 s on MovieLens 100k and a minute on latest-small (9,700 items)
#: with one thread on this shared machine. So the networks run their defaults on MovieLens
#: 100k and not at all on latest-small, where EASE's 9,700 x 9,700 inverse is minutes per fit too.
MAX_TRIALS = {("ml100k", "sasrec"): 1, ("ml100k", "sasrec-text"): 1,
              ("ml100k-new", "sasrec-text"): 1,
              ("mll", "sasrec"): 0, ("mll", "sasrec-text"): 0, ("mll", "ease"): 0,
              ("mll", "ease-text"): 0}  # fmt: skip
#: published figures on the nearest data (NOT the same data: printed beside, never compared)
PUBLISHED = [
    {"what": "Recformer (KDD'23), Amazon Musical Instruments (2018 release, its own 5-core "
             "filtering and item metadata), leave-last-out, full ranking",
     "ndcg@10": 0.0830, "recall@10": 0.1052, "section": "mi"},
]  # fmt: skip


@dataclass(frozen=True)
class Section:
    title: str
    folder: str
    split: str
    level: str
    models: tuple[str, ...]


SECTIONS = {
    "mi": Section("Musical Instruments 5-core, leave-last-out", "amazon_musical_instruments_5",
                  "leave-last-out", "review", WARM_MODELS),
    "ml100k": Section("MovieLens 100k, leave-last-out", "movielens_100k", "leave-last-out",
                      "item", WARM_MODELS),
    "mll": Section("MovieLens latest-small, leave-last-out", "movielens_latest_small",
                   "leave-last-out", "item", WARM_MODELS),
    "mi-new": Section("Musical Instruments 5-core, leave-last-out, new test items",
                      "amazon_musical_instruments_5", "leave-last-out-new", "review", NEW_MODELS),
    "ml100k-new": Section("MovieLens 100k, leave-last-out, new test items", "movielens_100k",
                          "leave-last-out-new", "item", NEW_MODELS),
}  # fmt: skip
#: (section, model) -> options the protocol fixes. A new item has no id embedding, so on the
#: new-item sections a sasrec-text run with its defaults only (no tuning) uses the inductive
#: setting, text alone (UniSRec's choice for new items); where it is tuned, the tuner picks.
FIXED = {("ml100k-new", "sasrec-text"): {"ids": False}}
#: sections where RecBole's SASRec was not run, and why
RECBOLE_NOT_RUN = {
    "ml100k": "not run: RecBole trains on every prefix of every history (97,171 sequences padded "
              "to 50); one epoch took 215 s here with one thread, so a run to early stopping "
              "takes hours on this machine",
    "mll": "not run (as for MovieLens 100k, with 100,836 interactions and 9,742 items)",
}  # fmt: skip
log = ft.log


def features_path(args, sec: Section) -> Path:
    import recfeat

    out = CACHE / "features" / f"{sec.folder}-{sec.level}-frozen.parquet"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        log(f"extracting {sec.level}-level vectors of {sec.folder}")
        recfeat.extract_file(args.data_dir / sec.folder, out, level=sec.level, encoder="minilm",
                             **EXTRACT)  # fmt: skip
    return out


def measure(state, key: str, data, features, model: str, split, seed: int, trials: int,
            fixed: dict | None = None):  # fmt: skip
    """One tuned evaluation, kept in ``state`` with per-user units for paired intervals."""
    import recfeat

    # leave-last-out does not depend on the seed, so the seed must reach the models' own
    # randomness (initialisation, batches) or three seeds would train one model three times
    options = {**({"seed": seed} if model in NEURAL else {}), **(fixed or {})}
    from recfeat.plugin.registry import get_registry

    space = {k: list(v) for k, v in get_registry("model").get(model).tune_space.items()}
    done = state.get(key)
    if done is not None and done.get("space", space) != space:
        done = None  # measured over another search space: measure again
    # (cells measured before the seed was passed ran the models' default seed, 0)
    before = {"seed": 0} if model in NEURAL else {}
    if done is not None and done["trials"] == trials and done.get("model_options", before) == options:
        return done
    log(f"{key}: tuning ({trials} trials) + fit")
    start = time.perf_counter()
    tuning = {"tune": True, "tune_trials": trials} if trials > 1 else {}
    res = recfeat.evaluate(data, item_features=features, models=[(model, options)], split=split,
                           k=K, seed=seed, relevance_threshold=None,
                           metrics=["ndcg@k", "recall@k", "mrr"], **tuning)  # fmt: skip
    info = res.to_dict()
    label = str(res.table.index[0])
    row = info["models"][label]
    units = {m: np.asarray(v, dtype=float).tolist() for m, v in res.units.get(label, {}).items()}
    tuning = (info.get("tuning") or {}).get("models", {}).get(label)
    model_obj_seconds = row.get("fit_seconds")
    done = {"metrics": row["metrics"], "units": units, "tuning": tuning, "trials": trials,
            "model_options": options, "space": space,
            "fit_seconds": model_obj_seconds, "notes": row.get("notes", []),
            "ranking": info.get("ranking"), "split": info.get("split"),
            "wall_s": round(time.perf_counter() - start, 1),
            "measured_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
            "load_1min": round(os.getloadavg()[0], 1)}  # fmt: skip
    state.put(key, done)
    log(f"{key}: {NDCG} {row['metrics'].get(NDCG) or float('nan'):.4f} ({done['wall_s']:.0f} s)")
    return done


def recbole_csv(data, path: Path) -> Path:
    """``user,item,order``: each user's interactions in the split's order (time, then row)."""
    import pandas as pd

    inter = data.interactions.reset_index(drop=True)
    t = pd.to_numeric(inter["timestamp"], errors="coerce").fillna(-1).to_numpy()
    frame = pd.DataFrame({"user": inter["user"].astype(str), "item": inter["item"].astype(str),
                          "t": t, "pos": np.arange(len(inter))})  # fmt: skip
    frame = frame.sort_values(["user", "t", "pos"], kind="stable")
    frame["order"] = frame.groupby("user").cumcount()
    frame[["user", "item", "order"]].to_csv(path, index=False)
    return path


def run_recbole(args, state, name: str, sec: Section, data, seed: int) -> None:
    key = f"s{seed}/recbole-sasrec"
    if state.get(key) is not None or not Path(args.recbole_python).exists():
        if not Path(args.recbole_python).exists():
            log(f"{key}: skipped, no RecBole environment at {args.recbole_python}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        csv = recbole_csv(data, Path(tmp) / "inter.csv")
        out = Path(tmp) / "out.json"
        log(f"{key}: RecBole SASRec (its own venv)")
        start = time.perf_counter()
        proc = subprocess.run([args.recbole_python, str(REPO / "benchmarks" / "peer_recbole.py"),
                               "--inter", str(csv), "--out", str(out), "--seed", str(seed),
                               "--workdir", str(Path(tmp) / "wd"), "--epochs", str(args.recbole_epochs)],
                              capture_output=True, text=True)  # fmt: skip
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            log(f"{key}: RecBole failed: {' | '.join(tail)}")
            state.put(key, {"failed": " | ".join(tail)})
            return
        found = json.loads(out.read_text())
        found["wall_s"] = round(time.perf_counter() - start, 1)
        state.put(key, found)
        log(f"{key}: RecBole {json.dumps(found.get('test', found.get('test_metrics', {})))}")


def run_section(args, name: str) -> None:
    import recfeat

    sec = SECTIONS[name]
    state = ft.State(name, args.fresh, CACHE)
    data = recfeat.load_dataset(args.data_dir / sec.folder)
    features = recfeat.read_features(features_path(args, sec))
    for seed in args.seeds:
        split = recfeat.make_split(data.interactions, sec.split, seed=seed)
        for model in [] if args.peers_only else (args.models or sec.models):
            if model not in sec.models:
                continue
            limit = MAX_TRIALS.get((name, model))
            trials = args.neural_trials if model in NEURAL else args.trials
            trials = min(trials, limit) if limit is not None else trials
            if trials == 0:
                continue
            measure(state, f"s{seed}/{model}", data, features if _uses_text(model) else None,
                    model, split, seed, trials, FIXED.get((name, model)))  # fmt: skip
        if sec.split == "leave-last-out" and not args.no_peers:
            run_recbole(args, state, name, sec, data, seed)


def _uses_text(model: str) -> bool:
    from recfeat.plugin.registry import get_registry

    return bool(get_registry("model").get(model).uses_text)


# -- the report --------------------------------------------------------------------------------
def cell(state: dict, seeds, model: str) -> dict | None:
    rows = [state.get(f"s{s}/{model}") for s in seeds]
    rows = [r for r in rows if r is not None and "metrics" in r]
    if not rows:
        return None
    used = [s for s in seeds if state.get(f"s{s}/{model}") is not None]
    return {"seeds": used, **{m: float(np.mean([r["metrics"][m] for r in rows])) for m in METRICS},
            "per_seed": {m: [r["metrics"][m] for r in rows] for m in METRICS},
            "fit_seconds": [r["fit_seconds"] for r in rows],
            "chosen": [honest.chosen(r) for r in rows], "trials": rows[0]["trials"]}  # fmt: skip


def ratio(state: dict, seeds, ref: str, cand: str, metric: str = NDCG, same_users: bool = False):
    from recfeat.evaluation.paired import ratio_interval

    pairs = [(state.get(f"s{s}/{ref}"), state.get(f"s{s}/{cand}")) for s in seeds]
    pairs = [(r, c) for r, c in pairs if r and c and metric in r.get("units", {})
             and metric in c.get("units", {})]  # fmt: skip
    if not pairs:
        return None
    ref = [np.asarray(r["units"][metric]) for r, _ in pairs]
    cand = [np.asarray(c["units"][metric]) for _, c in pairs]
    if same_users:
        # leave-last-out does not depend on the seed: every seed tests the same users, and
        # seeds only vary the models' own randomness. Resampling the users of three seeds as
        # if they were three samples would shrink the interval by sqrt(3): average each
        # user's score over the seeds, then resample users once.
        ref, cand = [np.mean(ref, axis=0)], [np.mean(cand, axis=0)]
    found = ratio_interval(ref, cand, seed=0)
    return None if found is None else {**found.as_dict(), "seeds": len(pairs)}


def recbole_cell(state: dict, seeds) -> dict | None:
    rows = [state.get(f"s{s}/recbole-sasrec") for s in seeds]
    rows = [r for r in rows if r and "failed" not in r]
    if not rows:
        failed = [state.get(f"s{s}/recbole-sasrec") for s in seeds]
        failed = [r["failed"] for r in failed if r and "failed" in r]
        return {"failed": failed[0]} if failed else None
    # like for like: RecBole's model, re-scored with each user's history out of the ranking
    # (recfeat's protocol); RecBole's own figures rank the history too
    tests = [r.get("test_masked") or {} for r in rows]
    own = [r.get("test") or {} for r in rows]

    def pick(t, name):
        for k, v in t.items():
            if k.lower().replace("@", "") == name.replace("@", ""):
                return float(v)
        return None

    out = {"seeds": len(rows)}
    for name in ("ndcg@10", "recall@10", "mrr", "mrr@10"):
        vals = [pick(t, name) for t in tests]
        out[name] = float(np.mean(vals)) if all(v is not None for v in vals) else None
        vals = [pick(t, name) for t in own]
        out[f"recbole_own_{name}"] = float(np.mean(vals)) if all(v is not None for v in vals) else None
    out["recompute_matches_recbole"] = [r.get("recompute_matches_recbole") for r in rows]
    out["best_epoch"] = [r.get("best_epoch") for r in rows]
    out["epochs"] = [r.get("epochs_run") for r in rows]
    out["train_seconds"] = [r.get("train_seconds") for r in rows]
    out["split_check"] = [r.get("split_check") for r in rows]
    return out


def analyse(name: str, state: dict, seeds) -> dict:
    sec = SECTIONS[name]
    cells = {m: c for m in sec.models if (c := cell(state, seeds, m)) is not None}
    ratios = {}
    for ref, cand in (("sasrec", "sasrec-text"), ("ease", "ease-text"), ("ease", "sasrec-text"),
                      ("text-knn-last", "sasrec-text"), ("item-knn-last", "sasrec")):
        if ref in cells and cand in cells:
            ratios[f"{cand} / {ref}"] = ratio(state, seeds, ref, cand,
                                              same_users=sec.split == "leave-last-out")
    ranking = next((state[f"s{s}/{m}"].get("ranking") for s in seeds for m in sec.models
                    if state.get(f"s{s}/{m}")), None)  # fmt: skip
    randoms = [state[f"s{s}/{m}"]["ranking"].get("expected_random_ndcg@10") for s in seeds
               for m in sec.models[:1] if state.get(f"s{s}/{m}")]  # fmt: skip
    return {"title": sec.title, "split": sec.split, "cells": cells, "ratios": ratios,
            "ranking": ranking, "expected_random_ndcg@10": float(np.mean(randoms)) if randoms else None,
            "recbole": recbole_cell(state, seeds) if sec.split == "leave-last-out" else None}  # fmt: skip


def targets(results: dict) -> list[dict]:
    out = []

    def add(target, met, measured, where):
        out.append({"target": target, "met": met, "measured": measured, "section": where})

    mi = results.get("mi")
    r = (mi or {}).get("ratios", {}).get("sasrec-text / sasrec")
    if r:
        add("MI leave-last-out: sasrec-text >= 1.10x sasrec NDCG@10, interval above 1",
            r["ratio"] >= 1.10 and r["low"] > 1,
            f"{r['ratio']:.3f}x (95% CI {r['low']:.3f} .. {r['high']:.3f}, {r['seeds']} seeds)", "mi")
    else:
        add("MI leave-last-out: sasrec-text >= 1.10x sasrec NDCG@10, interval above 1", None, "-", "mi")
    for name in ("mi", "ml100k", "mll"):
        res = results.get(name)
        if not res or "sasrec" not in res["cells"]:
            continue
        rb = res.get("recbole")
        ours = res["cells"]["sasrec"][NDCG]
        if not rb or rb.get("ndcg@10") is None:
            why = (rb or {}).get("failed", RECBOLE_NOT_RUN.get(name, "not run"))
            add(f"{name}: sasrec within 5% of RecBole's SASRec (NDCG@10)", None,
                f"sasrec {ours:.4f}; RecBole: {why}", name)
            continue
        rel = ours / rb["ndcg@10"] - 1
        add(f"{name}: sasrec within 5% of RecBole's SASRec (NDCG@10)", abs(rel) <= 0.05,
            f"{ours:.4f} vs {rb['ndcg@10']:.4f} ({rel:+.1%}, {rb['seeds']} seeds)", name)
    for name in ("mi-new", "ml100k-new"):
        res = results.get(name)
        if not res or "sasrec-text" not in res["cells"]:
            continue
        got, chance = res["cells"]["sasrec-text"][NDCG], res["expected_random_ndcg@10"]
        knn = res["cells"].get("text-knn-last", {}).get(NDCG)
        rr = res["ratios"].get("sasrec-text / text-knn-last")
        add(f"{name}: sasrec-text >= 2x random and beats text-knn-last",
            got >= 2 * chance and knn is not None and got > knn,
            f"{got:.4f} = {got / chance:.1f}x random ({chance:.4f}); text-knn-last {knn:.4f}"
            + (f" ({rr['ratio']:.2f}x, CI {rr['low']:.2f} .. {rr['high']:.2f})" if rr else ""), name)
    if mi and "sasrec" in mi["cells"]:
        secs = mi["cells"]["sasrec"]["fit_seconds"]
        add("training sasrec on MI (the tuned options, final fit) <= 3 min on 2 cores",
            max(secs) <= 180, f"{max(secs):.0f} s at most over {len(secs)} seeds "
            f"({', '.join(f'{s:.0f}' for s in secs)} s; one thread, shared machine)", "mi")
    return out


def section_markdown(name: str, res: dict) -> list[str]:
    lines = [f"## {res['title']}", ""]
    rk = res.get("ranking") or {}
    lines.append(f"Test users per seed: {rk.get('users', '?')}; candidates: {rk.get('candidates', '?')} "
                 f"({rk.get('candidate_set', '')}); expected NDCG@10 of a random ranking: "
                 f"{res['expected_random_ndcg@10'] or float('nan'):.4f}.")  # fmt: skip
    lines += ["", "| model | NDCG@10 | Recall@10 | MRR | per-seed NDCG@10 | final fit s | trials |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for m, c in res["cells"].items():
        lines.append(f"| {m} | {c['ndcg@10']:.4f} | {c['recall@10']:.4f} | {c['mrr']:.4f} | "
                     f"{', '.join(f'{v:.4f}' for v in c['per_seed'][NDCG])} | "
                     f"{', '.join(f'{s:.0f}' for s in c['fit_seconds'])} | {c['trials']} |")  # fmt: skip
    rb = res.get("recbole")
    if rb and "failed" not in rb:
        lines.append(f"| RecBole SASRec (peer, {rb['seeds']} seeds; its model re-scored with the "
                     f"history masked, as here) | {rb['ndcg@10']:.4f} | {rb['recall@10']:.4f} | "
                     f"{rb['mrr'] or float('nan'):.4f} | | "
                     f"{', '.join(f'{s:.0f}' for s in rb['train_seconds'])} | its defaults, early "
                     f"stopping (best epochs {', '.join(map(str, rb['best_epoch']))}) |")  # fmt: skip
        lines.append(f"| RecBole SASRec, RecBole's own figures (history NOT masked; MRR@10) | "
                     f"{rb['recbole_own_ndcg@10'] or float('nan'):.4f} | "
                     f"{rb['recbole_own_recall@10'] or float('nan'):.4f} | "
                     f"{rb['recbole_own_mrr@10'] or float('nan'):.4f} | | | |")  # fmt: skip
    elif rb:
        lines.append(f"| RecBole SASRec (peer) | failed: {rb['failed']} | | | | | |")
    for pub in PUBLISHED:
        if pub["section"] == name:
            lines.append(f"| published: {pub['what']} | {pub['ndcg@10']:.4f} | "
                         f"{pub['recall@10']:.4f} | | | | NOT the same data |")  # fmt: skip
    if res["ratios"]:
        lines += ["", "Ratios of mean NDCG@10 (paired, stratified bootstrap 95% interval over "
                  "each seed's test users):", ""]  # fmt: skip
        for k, r in res["ratios"].items():
            if r:
                lines.append(f"- {k}: {r['ratio']:.3f}x ({r['low']:.3f} .. {r['high']:.3f})")
    lines += ["", "Options chosen on validation (per seed):", ""]
    for m, c in res["cells"].items():
        lines.append(f"- `{m}`: " + "; ".join(f"{i}: {x}" for i, x in zip(c["seeds"], c["chosen"],
                                                                          strict=False)))  # fmt: skip
    return lines + [""]


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in results if results[n]["cells"]]
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        res = results[name]
        models = list(res["cells"])
        vals = [res["cells"][m][NDCG] for m in models]
        colors = ["#c44e52" if _uses_text(m) else "#4c72b0" for m in models]
        ax.barh(models, vals, color=colors)
        if res.get("recbole") and res["recbole"].get("ndcg@10"):
            ax.axvline(res["recbole"]["ndcg@10"], color="k", ls="--", lw=1, label="RecBole SASRec")
            ax.legend(fontsize=7)
        if res.get("expected_random_ndcg@10"):
            ax.axvline(res["expected_random_ndcg@10"], color="grey", ls=":", lw=1)
        ax.invert_yaxis()
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("NDCG@10 (mean over seeds)")
    fig.suptitle("Next-item recommendation, leave-last-out (red: uses text; dotted: random)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(args, wall: float) -> None:
    from recfeat.atomic import write_text
    from recfeat.machine import cpu_flags

    results = {}
    for name in SECTIONS:
        p = CACHE / f"state-{name}.json"
        if p.exists():
            results[name] = analyse(name, json.loads(p.read_text()), args.seeds)
    found = targets(results)
    env = honest.environment(wall, [list(os.getloadavg())])
    flags = sorted(f for f in cpu_flags() if f.startswith(("avx512_bf16", "avx512_vnni", "amx")))
    lines = ["# Next-item recommendation with text: the leave-last-out protocol (issue 23)", "",
             "- Command: `python benchmarks/bench_sequential.py` (resumable, cells kept in "
             "`.recfeat-cache/seq_bench/`; RecBole's SASRec needs its own venv, see "
             f"benchmarks/peer_recbole.py); this report: `{' '.join(sys.argv[1:]) or '(a full run)'}`",
             f"- Written {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; machine: {env['cpu']}, "
             f"{env['cores']} cores ({', '.join(flags) or 'no bf16/VNNI/AMX flags'}); torch "
             f"{env['versions'].get('torch')}; no GPU was lent to this task",
             "- Protocol: each user's last interaction by time is the test (ties: row order), the "
             "one before it the validation item for tuning; full ranking over every training item "
             "the user has not interacted with; every held-out interaction relevant; NDCG@10, "
             "Recall@10 and MRR (ours: over the whole ranking; RecBole's: MRR@10). New-item "
             "sections rank the held-out items only.",
             f"- Tuning: `recfeat.evaluate(..., tune=True)`, {args.trials} trials per model "
             f"({args.neural_trials} for sasrec / sasrec-text); exceptions: "
             f"{', '.join(f'{m} on {n}: ' + (str(t) if t else 'not run') for (n, m), t in MAX_TRIALS.items())} (see MAX_TRIALS in the script for why). "
             f"Options fixed by the protocol: {', '.join(f'{m} on {n}: {o}' for (n, m), o in FIXED.items())} (see FIXED).",
             "- Text: frozen all-MiniLM-L6-v2 (bf16, 256 tokens, unit length); review level for "
             "Musical Instruments (an item = the mean of its TRAINING reviews), item level for "
             "MovieLens. sasrec-text learns a linear adaptor from them (whitening first: a tuned option).",
             ""]  # fmt: skip
    lines += ["## Targets", "", "| | target | measured |", "|---|---|---|"]
    for t in found:
        verdict = "not measured" if t["met"] is None else ("**PASS**" if t["met"] else "**MISS**")
        lines.append(f"| {verdict} | {t['target']} | {t['measured']} |")
    lines.append("")
    for name, res in results.items():
        lines += section_markdown(name, res)
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_text(RESULTS / "sequential.md", "\n".join(lines) + "\n")
    write_text(RESULTS / "sequential.json", json.dumps(
        {"environment": env, "settings": {"seeds": args.seeds, "trials": args.trials,
                                          "neural_trials": args.neural_trials, "extract": EXTRACT},
         "published": PUBLISHED, "targets": found, "sections": results}, indent=1, default=float) + "\n")
    plot(results, RESULTS / "sequential.png")
    log(f"wrote {RESULTS / 'sequential.md'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path,
                    default=Path(os.environ.get("RECFEAT_DATA_DIR", REPO.parent / "shared" / "data")))
    ap.add_argument("--only", default=",".join(SECTIONS), help="sections, comma-separated")
    ap.add_argument("--models", default=None, help="only these models (comma-separated)")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--trials", type=int, default=6)
    ap.add_argument("--neural-trials", type=int, default=4)
    ap.add_argument("--recbole-python", default="/work/recbole-venv/bin/python")
    ap.add_argument("--recbole-epochs", type=int, default=200)
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--peers-only", action="store_true", help="only RecBole's SASRec")
    ap.add_argument("--fresh", action="store_true")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.models = args.models.split(",") if args.models else None
    CACHE.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if not args.report_only:
        for name in args.only.split(","):
            run_section(args, name)
    report(args, time.perf_counter() - start)


if __name__ == "__main__":
    main()
