"""Downstream models on real data: the issue-4 targets, measured and written down.

Runs four evaluations with recfeat.evaluation.protocol.evaluate (the same code path as
``recfeat evaluate``) and writes ``benchmarks/results/models.{md,json,png}``:

1. MovieLens 100k, random 80/20: biased MF RMSE <= 0.93 (published anchor: SVD 0.939).
2. Musical Instruments 5-core, random 80/20: best text-using model's RMSE < bias < global mean;
   warm top-K: hybrid NDCG@10 >= the best ID-only model's.
3. Musical Instruments, item cold-start (20% of items): content and hybrid NDCG@10 on cold
   items >= 2x random; ID-only models shown as unable.

Text features: review-level all-MiniLM-L6-v2 vectors of the Musical Instruments reviews
(``recfeat extract DATA --format amazon --level review``), made here through the pipeline
(its cache makes re-runs cheap) unless ``--reviews FILE`` is given. The evaluation turns
them into leakage-free item vectors per split (see recfeat.evaluation.protocol).

    python benchmarks/bench_models.py [--data-dir ../shared/data] [--reviews FILE.parquet]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"

ID_ONLY = ["global-mean", "bias", "popularity", "random", "mf", "als", "bpr"]
TEXT_RATING = ["linear", "ridge", "sgd", "gbm", ("hybrid", {"loss": "rating"})]
TEXT_RANK = ["content", "hybrid", "hybrid-als"]
HYBRIDS = ["hybrid", "hybrid-als"]  # the warm top-K target applies to the best of these


def review_features(data_dir: Path, given: str | None, precision: str):
    from recfeat.data.features import load_features

    if given:
        return load_features(given), given
    path = REPO / ".recfeat-cache" / f"mi_reviews_minilm_{precision}.parquet"
    if not path.exists():
        from recfeat.extraction.pipeline import extract
        from recfeat.extraction.stages import default_encoder
        from recfeat.plugins.datasets import load_dataset

        data = load_dataset(data_dir / "amazon_musical_instruments_5", format="amazon")
        result = extract(data, level="review", encoder=default_encoder(precision=precision))
        result.save(path)
    return load_features(path), str(path)


def run(name, data, features, models, split, k=10, seed=0):
    from recfeat.evaluation.protocol import evaluate

    start = time.perf_counter()
    res = evaluate(data, features, models, split, k=k, seed=seed)
    print(f"[{name}] {time.perf_counter() - start:.0f} s", file=sys.stderr)
    print(res.display_table().to_string(), file=sys.stderr)
    return res


def label(spec) -> str:
    return (
        spec
        if isinstance(spec, str)
        else f"{spec[0]}({', '.join(f'{k}={v}' for k, v in spec[1].items())})"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument(
        "--reviews", default=None, help="review-level features of Musical Instruments"
    )
    parser.add_argument("--precision", default="bf16", help="encoder precision when extracting")
    parser.add_argument(
        "--out", default=str(RESULTS / "models"), help="output stem (.md/.json/.png)"
    )
    args = parser.parse_args(argv)
    from recfeat.plugins.datasets import load_dataset

    data_dir = Path(args.data_dir)
    wall = time.perf_counter()
    ml = load_dataset(data_dir / "movielens_100k", format="movielens-100k")
    mi = load_dataset(data_dir / "amazon_musical_instruments_5", format="amazon")
    reviews, reviews_path = review_features(data_dir, args.reviews, args.precision)

    runs = {
        "ml100k_random": run("ml100k_random", ml, None, ID_ONLY, "random"),
        "mi_random": run("mi_random", mi, reviews, ID_ONLY + TEXT_RATING + TEXT_RANK, "random"),
        "mi_item_cold": run(
            "mi_item_cold", mi, reviews, ID_ONLY + ["ridge", "gbm"] + TEXT_RANK, "item-cold"
        ),
    }
    targets = check_targets(runs)
    write_outputs(
        Path(args.out), runs, targets, reviews_path, reviews, time.perf_counter() - wall, argv
    )
    for t in targets:
        print(
            ("PASS " if t["met"] else "MISS ") + t["target"] + ": " + t["measured"], file=sys.stderr
        )
    return 0


def check_targets(runs) -> list[dict]:
    ml, mir, mic = (runs[k].table for k in ("ml100k_random", "mi_random", "mi_item_cold"))
    out = []
    mf = ml.loc["mf", "rmse"]
    out.append({"target": "MovieLens 100k random 80/20: mf RMSE <= 0.93", "met": bool(mf <= 0.93),
                "measured": f"mf RMSE {mf:.4f} (bias {ml.loc['bias', 'rmse']:.4f}, global mean {ml.loc['global-mean', 'rmse']:.4f})"})  # fmt: skip
    text_rmse = mir.loc[[label(m) for m in TEXT_RATING], "rmse"]
    best = text_rmse.idxmin()
    bias, gm = mir.loc["bias", "rmse"], mir.loc["global-mean", "rmse"]
    out.append({
        "target": "Musical Instruments random 80/20: best text model RMSE < bias RMSE, and the "
                  "margin over global mean larger",
        "met": bool(text_rmse.min() < bias and gm - text_rmse.min() > bias - text_rmse.min()),
        "measured": f"{best} {text_rmse.min():.4f} vs bias {bias:.4f} vs global mean {gm:.4f}",
    })  # fmt: skip
    rnd = mic.loc["random", "ndcg@10"]
    for name in TEXT_RANK:
        v = mic.loc[name, "ndcg@10"]
        out.append({"target": f"item cold-start (20% items): {name} NDCG@10 >= 2x random", "met": bool(v >= 2 * rnd),
                    "measured": f"{name} {v:.4f} vs random {rnd:.4f} ({v / rnd:.2f}x)"})  # fmt: skip
    unable = [
        m for m in ID_ONLY if m != "random" and runs["mi_item_cold"].na.get(m, {}).get("ndcg@10")
    ]
    out.append({"target": "item cold-start: ID-only models shown as unable", "met": len(unable) == len(ID_ONLY) - 1,
                "measured": f"n/a for {', '.join(unable)}"})  # fmt: skip
    id_rank = mir.loc[[m for m in ID_ONLY], "ndcg@10"]
    hybrids = mir.loc[HYBRIDS, "ndcg@10"]
    hy, best_hy = hybrids.max(), hybrids.idxmax()
    others = ", ".join(f"{m} {v:.4f}" for m, v in hybrids.items() if m != best_hy)
    out.append({"target": "warm top-K (random 80/20): best hybrid NDCG@10 >= best ID-only model's", "met": bool(hy >= id_rank.max()),
                "measured": f"{best_hy} {hy:.4f} vs {id_rank.idxmax()} {id_rank.max():.4f} (also {others})"})  # fmt: skip
    return out


def write_outputs(stem: Path, runs, targets, reviews_path, reviews, wall, argv) -> None:
    from recfeat.atomic import write_text

    stem.parent.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/bench_models.py " + " ".join(argv or sys.argv[1:])
    env = {
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "note": "2-core machine shared with other work while measuring; fit times are indicative only",
        "wall_seconds": round(wall, 1),
    }
    payload = {
        "command": command.strip(),
        "environment": env,
        "reviews_features": {
            "path": reviews_path,
            "rows": int(len(reviews.items)),
            "dim": reviews.dim,
            "encoder": reviews.manifest.get("encoder_name"),
            "precision": reviews.manifest.get("precision"),
        },  # fmt: skip
        "targets": targets,
        "runs": {k: v.to_dict() for k, v in runs.items()},
    }
    from recfeat.jsonable import jsonable

    write_text(stem.with_suffix(".json"), json.dumps(jsonable(payload), indent=2) + "\n")
    titles = {
        "ml100k_random": ("MovieLens 100k, random 80/20 split", "recfeat evaluate ../shared/data/movielens_100k --format movielens-100k --models global-mean,bias,popularity,random,mf,als,bpr --split random --k 10 --seed 0"),
        "mi_random": ("Musical Instruments 5-core, random 80/20 split (warm)", "recfeat evaluate ../shared/data/amazon_musical_instruments_5 --format amazon --features MI_REVIEWS.parquet --models global-mean,bias,popularity,random,mf,als,bpr,linear,ridge,sgd,gbm,content,hybrid,hybrid-als --split random --k 10 --seed 0  (plus hybrid with -O hybrid.loss=rating)"),
        "mi_item_cold": ("Musical Instruments 5-core, item cold-start (20% of items held out)", "recfeat evaluate ../shared/data/amazon_musical_instruments_5 --format amazon --features MI_REVIEWS.parquet --models global-mean,bias,popularity,random,mf,als,bpr,ridge,gbm,content,hybrid,hybrid-als --split item-cold --k 10 --seed 0"),
    }  # fmt: skip
    lines = [
        "# Downstream models: measured results",
        "",
        f"Produced by `{command.strip()}` (wall {wall:.0f} s). {env['note']}.",
        "",
        f"Text features: review-level {reviews.manifest.get('encoder_name') or 'minilm'} vectors "
        f"({len(reviews.items)} reviews, dim {reviews.dim}, precision {reviews.manifest.get('precision')}), "
        "made with `recfeat extract ../shared/data/amazon_musical_instruments_5 --format amazon --level review --precision bf16 --out MI_REVIEWS.parquet`.",
        "",
        "## Targets",
        "",
        *[f"- {'PASS' if t['met'] else 'MISS'}: {t['target']} — {t['measured']}" for t in targets],
        "",
        "## Protocol and leakage policy",
        "",
        "- One seeded split per table; every model is fitted on the same training rows.",
        "- Ranking is full ranking: each test user ranks every training item not in their training "
        "history (warm), or every held-out item (item cold-start); no sampled negatives; "
        "relevant = the user's held-out items. NaN scores rank last; ties break by a seeded random key.",
        "- Item text vectors = mean of the item's TRAINING reviews only; user profiles = mean of "
        "the vectors of the user's training items (models build them from `train`).",
        "- Cold items (review-only data, so their only text is reviews by test users) are "
        "represented leave-one-out: when scoring user u, the item's vector is the mean of the "
        "other users' reviews, never u's own.",
        "- Regression models train on leave-one-out user/item statistics and profiles, so a "
        "training row never sees its own rating in its features.",
        "",
    ]
    lines += explain(runs, targets)
    for key, res in runs.items():
        title, cli = titles[key]
        lines += [f"## {title}", "", f"Equivalent CLI: `{cli}`", "", res.to_markdown(), ""]
        rep = res.info["split"]
        lines.append(
            f"Split: {rep['train_interactions']} train / {rep['test_interactions']} test; "
            f"{rep['evaluated_test_interactions']} evaluated, {rep['dropped_cold_rows']} dropped ({rep['policy']}). "
            f"Ranking: {res.info['ranking']['users']} users x {res.info['ranking']['candidates']} candidates."
        )
        for model, notes in res.notes.items():
            lines += [f"- note [{model}]: {n}" for n in notes]
        lines.append("")
    lines += [
        "## Models",
        "",
        "- `mf`: biased MF by ALS in numpy (weighted-lambda). `als`/`bpr`: the `implicit` library (CPU).",
        "- `hybrid`: LightFM-style factorisation in torch; item factors = ID embedding + learned projection "
        "of the item text vector; user factors = ID embedding + projection of the profile; "
        "ID-dropout 0.5 so the text path works alone for cold items. Tuning tried on the warm split (epochs 15-100, lr 0.005-0.02, reg 1e-4-1e-2, id_dropout 0.2-0.5, factors 32-64, a learned log-popularity item feature) stayed at NDCG@10 0.042-0.053. Default loss BPR (ranking); "
        "`hybrid(loss=rating)` is the squared-error variant for RMSE.",
        "- `hybrid-als`: confidence-weighted implicit ALS (closed-form ridge solves in numpy) whose item factors "
        "have a text prior q_i = W'x_i + d_i (ridge text_reg on the residual d_i; W a ridge regression of the "
        "item factors on their text, refitted every sweep); a cold item's factor is W'x_i. Defaults (reg 10, "
        "text_reg 300, projection_reg 1) chosen on validation slices carved from the TRAINING part of the "
        "seed-0 random and item-cold splits (3 inner seeds), never on their test parts. For reference, not "
        "in the tables: `als` with regularization=30 instead of its default 0.05 reaches warm NDCG@10 0.0881 "
        "on this split (0.0724 on the same validation slices where hybrid-als got 0.0702), so hybrid-als beats "
        "the ALS in the table, not a tuned ALS.",
        "- `linear`/`ridge`/`sgd`/`gbm`: scikit-learn regressors on [profile, item text, their product "
        "(PCA-reduced), shrunk user/item mean deviations and log counts]. LLM-token sparse features are not used.",
        "",
    ]
    write_text(stem.with_suffix(".md"), "\n".join(lines) + "\n")
    plot_summary(stem.with_suffix(".png"), runs)


def explain(runs, targets) -> list[str]:
    """Plain words for every miss and for rating models that lose to the global mean."""
    out = []
    if not targets[-1]["met"]:
        out.append(
            "- Warm top-K miss: on 8k training interactions the warm ranking is dominated by "
            "popularity-like signal, which ALS and popularity capture directly; the hybrid drops "
            "its item-ID part on half of the training examples (so that the text path alone can "
            "rank cold items, where it does reach >= 3x random) and trades warm accuracy for it. "
            "See the tuning note under Models."
        )
    mi = runs["mi_random"].table
    worse = [m for m in mi.index if mi.loc[m, "rmse"] > mi.loc["global-mean", "rmse"]]
    if worse:
        out.append(
            f"- On Musical Instruments {', '.join(worse)} have a higher RMSE than the global mean: "
            "with ~7 ratings per user and 88% of ratings >= 4, latent factors overfit at the "
            "defaults tuned on MovieLens (same defaults used everywhere, no per-dataset tuning)."
        )
    return ["## Notes on the figures", "", *out, ""] if out else []


def plot_summary(path: Path, runs) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from recfeat.atomic import atomic_path

    panels = [("ml100k_random", "rmse", "MovieLens 100k random: RMSE"),
              ("mi_random", "rmse", "Musical Instr. random: RMSE"),
              ("mi_random", "ndcg@10", "Musical Instr. warm: NDCG@10"),
              ("mi_item_cold", "ndcg@10", "Musical Instr. cold items: NDCG@10")]  # fmt: skip
    fig, axes = plt.subplots(1, len(panels), figsize=(18, 5))
    for ax, (key, metric, title) in zip(axes, panels, strict=False):
        res = runs[key]
        col = res.table[metric]
        ypos = np.arange(len(col))
        ax.barh(
            ypos,
            col.fillna(0).to_numpy(),
            color=["#cccccc" if np.isnan(v) else "#3b75af" for v in col],
        )
        for y, (model, v) in zip(ypos, col.items(), strict=False):
            text = res.na.get(model, {}).get(metric, "n/a") if np.isnan(v) else f"{v:.3f}"
            ax.text(0, y, " " + text, va="center", fontsize=7)
        ax.set_yticks(ypos, labels=list(col.index), fontsize=7)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
