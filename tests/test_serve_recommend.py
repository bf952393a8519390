"""``POST /recommend`` says what it did (``recfeat.serve.recommender``): which request fields
shaped the ranking and which were ignored and why, unknown history ids named (and a history
of nothing but unknown ids refused), and every path's score on one range, in-process with
small fitted models and an item store of synthetic vectors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recfeat.data.features import Features
from recfeat.plugin.registry import get_registry
from recfeat.serve.errors import ApiError
from recfeat.serve.items import ItemStore
from recfeat.serve.recommender import Recommender
from recfeat.training.bundle import TrainedModel

N_ITEMS = 12
DIM = 8


def world(model_name: str, **options):
    """30 users over 12 items, item ``i0`` the most popular (every user has it), and a store
    holding a vector for every item."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(30):
        for t, item in enumerate(["i0", *rng.choice([f"i{i}" for i in range(1, N_ITEMS)], 3, replace=False)]):
            rows.append((f"u{u}", str(item), 5.0, 10 * t))
    inter = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    feats = Features([f"i{i}" for i in range(N_ITEMS)],
                     rng.normal(size=(N_ITEMS, DIM)).astype(np.float32), {"encoder": "synthetic"})  # fmt: skip
    model = get_registry("model").create(model_name, **options)
    model.fit(inter, item_features=feats if model.uses_text else None)
    seen = {u: list(g["item"]) for u, g in inter.groupby("user")}
    store = ItemStore(DIM, dict(feats.manifest))
    store.put_many(list(feats.ids), feats.vectors, added=False)
    trained = TrainedModel(model=model, header={"model": model_name}, seen=seen)
    return Recommender(trained, store), inter


def ask(rec, user=None, k=5, history_items=(), texts=0, **kw):
    """``rec.recommend`` as the route calls it; ``texts``: how many history texts were sent
    (random vectors stand in for their encodings)."""
    vectors = np.random.default_rng(1).normal(size=(texts, DIM)).astype(np.float32) if texts else None
    return rec.recommend(user, k, exclude_seen=True, history_items=list(history_items),
                         history_vectors=vectors, **kw)  # fmt: skip


def fields(answer) -> dict[str, dict]:
    return {entry["field"]: entry for entry in answer["ignored"]}


def test_a_known_user_is_told_that_the_history_sent_was_not_used():
    rec, _ = world("ease")
    out = ask(rec, "u3", history_items=["i5"], texts=2)
    assert out["source"] == "model"
    assert out["used"] == ["user"]
    ignored = fields(out)
    assert set(ignored) == {"history_items", "history_texts"}
    for entry in ignored.values():
        assert "'u3' is known to the model" in entry["reason"]
    # a request that sends nothing extra has nothing ignored
    assert ask(rec, "u3")["ignored"] == []


def test_an_unknown_user_without_history_gets_popularity_and_the_reason():
    rec, _ = world("ease")
    out = ask(rec, "nobody")
    assert out["source"] == "popularity" and out["used"] == []
    assert "'nobody' is not in the model's training data" in fields(out)["user"]["reason"]
    assert "popularity" in fields(out)["user"]["reason"]
    # no user at all: nothing was ignored
    assert ask(rec)["ignored"] == []


def test_unknown_history_ids_are_named_and_only_unknown_ids_are_refused():
    rec, _ = world("ease")
    out = ask(rec, "newcomer", history_items=["i4", "no-such-item", "i5"])
    assert out["source"] == "text-profile"
    assert out["used"] == ["history_items"]
    entry = fields(out)["history_items"]
    assert entry["items"] == ["no-such-item"] and "unknown" in entry["reason"]
    assert {"i4", "i5"}.isdisjoint(r["item"] for r in out["items"])  # the known ones counted
    with pytest.raises(ApiError) as info:
        ask(rec, "newcomer", history_items=["typo-1", "typo-2"])
    assert info.value.status == 422 and info.value.code == "unknown_items"
    assert "'typo-1'" in info.value.message and "'typo-2'" in info.value.message
    # refused even beside history texts: the ids are wrong whatever else came with them
    with pytest.raises(ApiError, match="no id is known"):
        ask(rec, "newcomer", history_items=["typo-1"], texts=1)


def test_a_sequential_model_names_what_it_could_not_use():
    rec, _ = world("item-knn-last")
    rec.store.put_many(["store-only"], np.ones((1, DIM), np.float32))
    out = ask(rec, "newcomer", history_items=["i3", "store-only"], texts=1)
    assert out["source"] == "model-history" and out["used"] == ["history_items"]
    ignored = fields(out)
    assert "never saw" in ignored["history_items"]["reason"]
    assert ignored["history_items"]["items"] == ["store-only"]
    assert "history_items alone" in ignored["history_texts"]["reason"]
    assert ignored["user"]["reason"].endswith("ranked by model-history")


def test_texts_and_items_both_shape_a_text_profile():
    rec, _ = world("ease")
    out = ask(rec, history_items=["i2"], texts=1)
    assert out["source"] == "text-profile"
    assert out["used"] == ["history_items", "history_texts"] and out["ignored"] == []


def test_every_path_scores_on_one_range_and_names_its_scale():
    rec, inter = world("ease")
    counts = inter["item"].value_counts()
    assert counts.iloc[0] > 1  # raw counts would leave the cosine range
    popular = ask(rec, k=N_ITEMS)
    profile = ask(rec, texts=1, k=N_ITEMS)
    model = ask(rec, "u1", k=N_ITEMS)
    assert (popular["score_scale"], profile["score_scale"], model["score_scale"]) == (
        "popularity-share", "cosine", "model-share")  # fmt: skip
    for answer in (popular, profile, model):
        scores = [r["score"] for r in answer["items"]]
        assert all(-1.0 <= s <= 1.0 for s in scores), (answer["source"], scores)
        assert scores == sorted(scores, reverse=True)
    top = popular["items"][0]
    assert top["item"] == counts.index[0] and top["score"] == 1.0
    assert top["raw_score"] == counts.iloc[0]
    for r in popular["items"]:
        assert r["score"] == pytest.approx(counts[r["item"]] / counts.iloc[0])
    assert all(r["score"] == r["raw_score"] for r in profile["items"])  # the cosine itself
    best = max(abs(r["raw_score"]) for r in model["items"])
    assert model["items"][0]["score"] == pytest.approx(model["items"][0]["raw_score"] / best)


def test_explain_keeps_working_and_keeps_the_accounts():
    rec, _ = world("ease")
    out = ask(rec, "u3", texts=1, explain=True)
    assert out["source"] == "model" and out["notes"] is not None
    assert "(explain quotes them as evidence only)" in fields(out)["history_texts"]["reason"]
    assert [r["rank"] for r in out["items"]] == list(range(1, len(out["items"]) + 1))
    assert all("history" in r and -1.0 <= r["score"] <= 1.0 for r in out["items"])
    profile = ask(rec, "newcomer", history_items=["i4", "nope"], explain=True)
    assert profile["source"] == "text-profile" and profile["score_scale"] == "cosine"
    assert {h["item"] for r in profile["items"] for h in r["history"]} <= {"i4"}
    assert fields(profile)["history_items"]["items"] == ["nope"]
    popular = ask(rec, "nobody", explain=True)
    assert popular["source"] == "popularity" and popular["notes"]
    assert all(r["explains"] == [] for r in popular["items"])
