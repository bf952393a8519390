"""recfeat's models beside the field's (implicit, LightFM, cornac), on the same splits and the
same evaluator (recfeat.evaluation.protocol.evaluate, the code path of ``recfeat evaluate
--peers``), written to ``benchmarks/peers/results.{md,json}``.

1. MovieLens 100k, random 80/20: the peers at their documented configurations
   (plugins/peers) against recfeat's ID-only models; NDCG@10 and recall@10, plus RMSE for
   the rating models.
2. Musical Instruments 5-core, item cold-start, review-level MiniLM features
   (``--reviews``): lightfm-warp-text against random and recfeat's ``content``.
3. MovieLens 100k, item cold-start, item-text MiniLM features (``--items``): the same.

Each is measured twice: relevant = every held-out interaction, and = rated >= 4. Seed 0,
k=10. Needs implicit, cornac and lightfm (benchmarks/peers/install_lightfm.sh).

    python benchmarks/peers/bench_peers.py [--data-dir ../shared/data]
        [--reviews /work/feats/mi_reviews.parquet] [--items /work/feats/ml100k_items.parquet]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RECFEAT_PROGRESS", "0")
REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "benchmarks" / "peers"

WARM = ["random", "popularity", "als", "bpr", "implicit-als", "implicit-bpr", "lightfm-warp",
        "cornac-bpr", "bias", "mf", "cornac-mf"]  # fmt: skip
COLD = ["random", "content", "lightfm-warp", "lightfm-warp-text"]
RELEVANCE = {"every held-out interaction": None, "rated >= 4": 4.0}


def run(title, data, features, models, split, metrics):
    from recfeat.evaluation.protocol import evaluate

    rows = []
    for label, threshold in RELEVANCE.items():
        start = time.perf_counter()
        res = evaluate(data, features, models, split, k=10, seed=0, metrics=metrics,
                       relevance_threshold=threshold)  # fmt: skip
        print(f"{title} [{label}] ({time.perf_counter() - start:.0f}s)\n{res.display_table()}")
        rows.append({"relevance": label, "markdown": res.to_markdown(), "result": res.to_dict()})
    return {"title": title, "runs": rows}


def main() -> None:
    from recfeat.data.features import load_features
    from recfeat.evaluation.splits import make_split
    from recfeat.plugins.datasets import load_dataset

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--reviews", default="/work/feats/mi_reviews.parquet")
    ap.add_argument("--items", default="/work/feats/ml100k_items.parquet")
    args = ap.parse_args()
    data_dir = Path(args.data_dir)

    ml = load_dataset(data_dir / "movielens_100k")
    mi = load_dataset(data_dir / "amazon_musical_instruments_5", format="amazon")
    sections = [
        run("MovieLens 100k, random 80/20 split (seed 0), k=10", ml, None, WARM,
            make_split(ml.interactions, "random", seed=0), ["ndcg@k", "recall@k", "rmse"]),
        run("Musical Instruments 5-core, item cold-start (20% of items, seed 0), k=10, "
            f"review-level MiniLM features ({args.reviews})", mi, load_features(args.reviews),
            COLD, make_split(mi.interactions, "item-cold", seed=0), ["ndcg@k", "recall@k"]),
        run("MovieLens 100k, item cold-start (20% of items, seed 0), k=10, item-text MiniLM "
            f"features ({args.items})", ml, load_features(args.items), COLD,
            make_split(ml.interactions, "item-cold", seed=0), ["ndcg@k", "recall@k"]),
    ]  # fmt: skip
    md = ["# Peers inside the harness", "", "Made by `python benchmarks/peers/bench_peers.py`.",
          "Peers at their libraries' documented configurations (plugins/peers); every row is",
          "fitted on the same training part and ranked by the same evaluator. n/a rows say why.",
          ""]  # fmt: skip
    for sec in sections:
        md += [f"## {sec['title']}", ""]
        cold = sec["runs"][0]["result"].get("cold_start")
        if cold:
            md += [f"Cold items ({cold.get('protocol')}): {cold.get('representation')}.", ""]
        for r in sec["runs"]:
            md += [f"Relevant: {r['relevance']}.", "", r["markdown"], ""]
    from recfeat.atomic import write_text
    from recfeat.jsonable import jsonable

    write_text(OUT / "results.md", "\n".join(md))
    payload = [{"title": s["title"], "runs": [{k: v for k, v in r.items() if k != "markdown"}
                                              for r in s["runs"]]} for s in sections]  # fmt: skip
    write_text(OUT / "results.json", json.dumps(jsonable(payload), indent=2) + "\n")
    print(f"wrote {OUT / 'results.md'}")


if __name__ == "__main__":
    main()
