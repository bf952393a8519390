"""Next-item recommendation: the leave-last-out splits, the histories the sequential models
read, the models (sasrec, sasrec-text, item-knn-last, text-knn-last) and the protocol run
end to end from Python, the CLI and a config file."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import recfeat
from recfeat.cli.main import cli
from recfeat.data.features import Features, ReviewVectors
from recfeat.data.recdata import RecData
from recfeat.errors import DataError
from recfeat.evaluation.splits import load_split, make_split, save_split
from recfeat.evaluation.tuning import validation_split
from recfeat.plugin.registry import get_registry
from recfeat.sequential.histories import Histories, left_pad


def frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])


def cycles(n_users=120, n_items=30, length=8, seed=0):
    """Every user walks the item ring i -> i+1 -> i+2 ... from a random start: the next item
    is fully determined by the last one, which no popularity or order-free model can see."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        start = int(rng.integers(n_items))
        for t in range(length):
            rows.append((f"u{u}", f"i{(start + t) % n_items}", 5.0, 100 * t))
    inter = frame(rows)
    # item text: a direction per item, with the NEXT item's direction mixed in, so text
    # similarity to the last item also points at the answer
    base = rng.normal(size=(n_items, 16))
    vecs = base + 0.8 * np.roll(base, -1, axis=0)
    feats = Features([f"i{i}" for i in range(n_items)], vecs.astype(np.float32),
                     {"encoder": "synthetic"})  # fmt: skip
    return inter, feats


# -- splits ------------------------------------------------------------------------------------
def test_leave_last_out_tests_each_users_last_interaction_ties_by_row_order():
    inter = frame([
        ("a", "x", 5, 1), ("a", "y", 5, 3), ("a", "z", 5, 3),  # y and z tie: z is later in rows
        ("b", "x", 5, 9), ("b", "w", 5, 2),
        ("c", "x", 5, 4),  # one interaction: kept for training, not tested
        ("d", "z", 5, 0), ("d", "x", 5, 1),
    ])  # fmt: skip
    s = make_split(inter, "leave-last-out")
    tested = {("a", "z"), ("b", "x"), ("d", "x")}
    assert set(zip(s.test["user"], s.test["item"], strict=True)) == tested
    assert ("c", "x") in set(zip(s.train["user"], s.train["item"], strict=True))
    assert s.report["users_with_one_interaction"] == 1
    assert s.report["tested_users"] == 3
    # the validation split tuning carves is the one before the last
    v = validation_split(s, seed=0)
    # (b and d have one training interaction left: not tested there)
    assert set(zip(v.test["user"], v.test["item"], strict=True)) == {("a", "y")}


def test_leave_last_out_needs_timestamps():
    inter = frame([("a", "x", 5, -1), ("a", "y", 5, -1)])
    with pytest.raises(DataError, match="leave-last-out split needs timestamps"):
        make_split(inter, "leave-last-out")


def test_leave_last_out_new_holds_new_items_out_of_every_sequence(tmp_path):
    inter, _ = cycles(n_users=80)
    s = make_split(inter, "leave-last-out-new", seed=3, test_fraction=0.25)
    held = set(s.test["item"])
    assert len(held) == 8 and not held & set(s.train["item"])
    evaluated = s.evaluation_rows()
    last = inter.sort_values("timestamp").groupby("user").tail(1)
    expected = {(u, i) for u, i in zip(last["user"], last["item"], strict=True) if i in held}
    assert set(zip(evaluated["user"], evaluated["item"], strict=True)) == expected
    assert s.report["tested_users"] == len(expected) > 0
    # a user's earlier interactions with new items are history: out of their candidates
    from recfeat.evaluation.protocol import _RankingTask

    task = _RankingTask(s, 2, 0, None, cold=recfeat.evaluation.coldstart.ColdStart(
        "ids-only", None, np.asarray(sorted(held), dtype=object), 0, s.test.iloc[:0]))  # fmt: skip
    history = s.test[~s.test.index.isin(evaluated.index)]
    for pos, user in enumerate(task.users):
        earlier = set(history.loc[history["user"] == user, "item"])
        excluded = set(task.candidates[task.exclude[pos]])
        assert earlier <= excluded
    # saved and loaded, the same rows are evaluated
    path = save_split(s, tmp_path / "split.json", inter)
    back = load_split(path, inter)
    assert back.kind == "leave-last-out-new"
    assert back.evaluation_rows().index.equals(evaluated.index)


def test_a_split_file_with_an_unknown_kind_is_one_error(tmp_path):
    inter, _ = cycles()
    path = save_split(make_split(inter, "leave-last-out"), tmp_path / "split.json", inter)
    payload = json.loads(path.read_text())
    payload["kind"] = "next-basket"
    path.write_text(json.dumps(payload))
    with pytest.raises(DataError, match="unknown kind 'next-basket'"):
        load_split(path, inter)


# -- histories ---------------------------------------------------------------------------------
def test_histories_follow_time_then_row_order_like_the_split():
    inter = frame([("a", "p", 5, 2), ("a", "q", 5, 1), ("a", "r", 5, 2), ("b", "p", 5, 0)])
    users, u = np.unique(inter["user"], return_inverse=True)
    items, i = np.unique(inter["item"], return_inverse=True)
    h = Histories.of(u, i, inter, len(users))
    assert [items[c] for c in h.of_user(0)] == ["q", "p", "r"]  # p and r tie: row order
    assert [items[c] for c in h.of_user(1)] == ["p"]
    assert len(h.of_user(-1)) == 0


@pytest.mark.parametrize("length", [1, 3, 50])
def test_windows_learn_every_transition_once(length):
    seq = np.arange(10)
    h = Histories(seq, np.array([0, 10]))
    pairs = [(int(w[k]), int(w[k + 1])) for w in h.windows(length) for k in range(len(w) - 1)]
    assert sorted(pairs) == [(k, k + 1) for k in range(9)]
    assert all(len(w) <= length + 1 for w in h.windows(length))


def test_left_pad_right_aligns_and_keeps_zero_for_padding():
    out = left_pad([np.array([0, 1]), np.array([], dtype=np.int64), np.arange(5)], 3)
    assert out.tolist() == [[0, 1, 2], [0, 0, 0], [3, 4, 5]]


# -- models ------------------------------------------------------------------------------------
def _scores(model, inter, feats=None, item_features=None):
    model.fit(inter, item_features=feats)
    users = np.asarray(sorted(set(inter["user"])), dtype=object)
    return users, model.score_items(users, model.items_, item_features=item_features)


def _next_item_hits(model, inter, feats=None) -> float:
    """Share of users whose top-scored unseen item is the true next item of the ring."""
    s = make_split(inter, "leave-last-out")
    model.fit(s.train, item_features=feats)
    users = s.test["user"].to_numpy(dtype=object)
    scores = model.score_items(users, model.items_)
    hits = 0
    for row, (user, truth) in enumerate(zip(users, s.test["item"], strict=True)):
        seen = set(s.train.loc[s.train["user"] == user, "item"])
        row_scores = np.where([it in seen for it in model.items_], -np.inf, scores[row])
        hits += model.items_[int(np.nanargmax(row_scores))] == truth
    return hits / len(users)


@pytest.mark.parametrize("name,options", [
    ("sasrec", {"epochs": 60, "dim": 32}),
    ("sasrec-text", {"epochs": 60, "dim": 32}),
    ("item-knn-last", {"mode": "transition"}),
])  # fmt: skip
def test_sequential_models_learn_the_order_popularity_cannot(name, options):
    inter, feats = cycles()
    model = get_registry("model").create(name, **options)
    text = feats if model.uses_text else None
    popularity = _next_item_hits(get_registry("model").create("popularity"), inter)
    assert popularity < 0.3
    assert _next_item_hits(model, inter, text) > 0.8


def test_cooccurrence_mode_and_text_knn_use_the_last_items():
    inter, feats = cycles()
    co = _next_item_hits(get_registry("model").create("item-knn-last", mode="cooccurrence"), inter)
    popularity = _next_item_hits(get_registry("model").create("popularity"), inter)
    assert co > popularity  # the last item's neighbours, in either direction
    text = _next_item_hits(get_registry("model").create("text-knn-last"), inter, feats)
    # the text of item i shares a part with i + 1's (and i - 1's: cosine is symmetric, but the
    # user has seen i - 1)
    assert text > 0.5 > 2 * popularity


def test_sasrec_is_deterministic_for_a_seed_and_differs_across_seeds():
    inter, _ = cycles(n_users=30)
    make = get_registry("model").create
    _, a = _scores(make("sasrec", epochs=3, dim=16, seed=1), inter)
    _, b = _scores(make("sasrec", epochs=3, dim=16, seed=1), inter)
    _, c = _scores(make("sasrec", epochs=3, dim=16, seed=2), inter)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_sasrec_text_scores_new_items_from_their_text_and_sasrec_cannot():
    inter, feats = cycles()
    train = inter[inter["item"] != "i11"]
    make = get_registry("model").create
    text_model = make("sasrec-text", epochs=5, dim=16, ids=True).fit(train, item_features=feats)
    id_model = make("sasrec", epochs=5, dim=16).fit(train)
    users = np.asarray(["u0", "u1", "stranger"], dtype=object)
    items = np.asarray(["i0", "i11"], dtype=object)
    new = Features(["i11"], feats.lookup(["i11"])[0], dict(feats.manifest))
    s = text_model.score_items(users, items, item_features=new)
    assert np.isfinite(s[:2]).all()
    assert np.isfinite(s[2, 0]) and np.isnan(s[2, 1])  # a stranger: popularity, new item NaN
    assert np.isnan(id_model.score_items(users, items)[:, 1]).all()


def test_sasrec_options_are_checked_with_the_fix():
    from recfeat.errors import OptionError

    inter, _ = cycles(n_users=10)
    with pytest.raises(OptionError, match="multiple of heads"):
        get_registry("model").create("sasrec", dim=30, heads=4).fit(inter)
    with pytest.raises(OptionError, match="epochs must be a whole number"):
        get_registry("model").create("sasrec", epochs=0).fit(inter)


# -- the protocol end to end -------------------------------------------------------------------
def review_data():
    inter, feats = cycles(n_users=40)
    inter = inter.assign(text=[f"review {u} {i}" for u, i in zip(inter["user"], inter["item"],
                                                                   strict=True)])  # fmt: skip
    data = RecData("cycles", inter[["user", "item", "rating", "timestamp"]], reviews=inter,
                   rating_scale=(1.0, 5.0))  # fmt: skip
    rng = np.random.default_rng(1)
    vecs = rng.normal(size=(len(inter), 8)).astype(np.float32)
    reviews = ReviewVectors(inter["user"].to_numpy(dtype=object),
                            inter["item"].to_numpy(dtype=object), vecs,
                            {"encoder": "synthetic", "level": "review", "source": "reviews"})  # fmt: skip
    return data, reviews


def test_no_text_of_a_test_interaction_reaches_the_training_features():
    data, reviews = review_data()
    split = make_split(data.interactions, "leave-last-out")
    kwargs = {"models": [("sasrec-text", {"epochs": 2, "dim": 8, "heads": 1})], "split": split,
              "relevance_threshold": None, "trust_features": True, "metrics": ["ndcg@k"], "k": 5}
    first = recfeat.evaluate(data, item_features=reviews, **kwargs)
    # scramble every TEST review's vector: nothing the models see may change
    test_keys = set(zip(split.test["user"], split.test["item"], strict=True))
    is_test = np.array([k in test_keys for k in zip(reviews.users, reviews.items, strict=True)])
    assert is_test.sum() == len(split.test)
    scrambled = reviews.vectors.copy()
    scrambled[is_test] = 1e3
    again = ReviewVectors(reviews.users, reviews.items, scrambled, reviews.manifest)
    second = recfeat.evaluate(data, item_features=again, **kwargs)
    assert first.table.equals(second.table)


def test_evaluate_leave_last_out_from_python_cli_and_config(tmp_path):
    data, _ = review_data()
    models = "popularity,item-knn-last,sasrec"
    options = {"sasrec": {"epochs": 2, "dim": 8}}
    specs = [m if m not in options else (m, options[m]) for m in models.split(",")]
    res = recfeat.evaluate(data, models=specs, split="leave-last-out", k=5,
                           relevance_threshold=None, metrics=["ndcg@k", "recall@k", "mrr"])  # fmt: skip
    assert res.info["split"]["split"] == "leave-last-out"
    assert res.info["ranking"]["users"] == 40
    assert set(res.table.index) == {"popularity", "item-knn-last", "sasrec(epochs=2, dim=8)"}
    assert res.table.notna().all().all()
    path = tmp_path / "inter.csv"
    data.interactions.to_csv(path, index=False)
    runner = CliRunner()
    out = runner.invoke(cli, ["evaluate", str(path), "--split", "leave-last-out", "--models",
                              "popularity,item-knn-last", "--relevance-threshold", "none",
                              "--k", "5", "--json"])  # fmt: skip
    assert out.exit_code == 0, out.output
    cfg = tmp_path / "exp.toml"
    cfg.write_text('[pipeline]\nsplit = "leave-last-out"\nk = 5\nrelevance_threshold = 0\n\n'
                   '[[models]]\nuse = "item-knn-last"\nmode = "cooccurrence"\n')
    out = runner.invoke(cli, ["evaluate", str(path), "--config", str(cfg), "--json"])
    assert out.exit_code == 0, out.output
    assert "\"leave-last-out\"" in out.output and "\"cooccurrence\"" in out.output


# -- ranking from a history alone (a live session; serve's "model-history") ----------------------
@pytest.mark.parametrize("name,options", [
    ("sasrec", {"epochs": 60, "dim": 32}),
    ("item-knn-last", {}),
    ("text-knn-last", {}),
])  # fmt: skip
def test_score_history_ranks_a_session_the_model_never_saw(name, options):
    inter, feats = cycles()
    model = get_registry("model").create(name, **options)
    model.fit(inter, item_features=feats if model.uses_text else None)
    items = np.asarray(model.items_, dtype=object)
    hits = 0
    for start in range(30):
        history = [f"i{(start + t) % 30}" for t in range(4)]
        scores = model.score_history([*history, "never-seen"], items)  # unknown ids skipped
        scores[np.isin(items, history)] = -np.inf
        hits += items[int(np.nanargmax(scores))] == f"i{(start + 4) % 30}"
    assert hits / 30 > 0.5


def test_score_history_is_refused_by_models_that_rank_known_users_only():
    from recfeat.errors import UsageError

    inter, _ = cycles(n_users=10)
    model = get_registry("model").create("popularity").fit(inter)
    with pytest.raises(UsageError, match="sequential model"):
        model.score_history(["i1"], ["i2"])


def test_serve_ranks_an_unknown_users_history_with_a_sequential_model():
    from recfeat.serve.items import ItemStore
    from recfeat.serve.recommender import Recommender
    from recfeat.training.bundle import TrainedModel

    inter, feats = cycles()
    model = get_registry("model").create("item-knn-last").fit(inter)
    seen = {u: list(g["item"]) for u, g in inter.groupby("user")}
    store = ItemStore(feats.dim, dict(feats.manifest))
    store.put_many(list(feats.ids), feats.vectors, added=False)
    rec = Recommender(TrainedModel(model, {"model": "item-knn-last"}, seen), store)
    out = rec.recommend("someone-new", 3, exclude_seen=True, history_items=["i3", "i4"],
                        history_vectors=None)  # fmt: skip
    assert out["source"] == "model-history"
    assert out["items"][0]["item"] == "i5"
    assert not {"i3", "i4"} & {r["item"] for r in out["items"]}
    # nothing the model knows in the history (an item only the store holds): the text
    # profile answers instead
    store.put_many(["store-only"], feats.vectors[:1])
    out = rec.recommend("someone-new", 3, exclude_seen=True, history_items=["store-only"],
                        history_vectors=None)  # fmt: skip
    assert out["source"] == "text-profile"


def test_next_item_splits_count_every_next_interaction_unless_told():
    data, _ = review_data()
    low = data.interactions["user"].isin([f"u{u}" for u in range(10)])
    data.interactions.loc[low, "rating"] = 1.0  # ten users rate everything low
    kwargs = {"models": "popularity", "k": 5, "metrics": ["ndcg@k"]}
    every = recfeat.evaluate(data, split="leave-last-out", **kwargs)
    assert every.info["relevance_threshold"] is None
    assert every.info["ranking"]["users"] == 40
    told = recfeat.evaluate(data, split="leave-last-out", relevance_threshold=4, **kwargs)
    assert told.info["relevance_threshold"] == 4.0 and told.info["ranking"]["users"] == 30
    made = make_split(data.interactions, "leave-last-out")
    assert recfeat.evaluate(data, split=made, **kwargs).info["relevance_threshold"] is None
    assert recfeat.evaluate(data, split="random", **kwargs).info["relevance_threshold"] == 4.0


def test_leave_last_out_on_movielens_100k_tests_one_last_rating_per_user(movielens_100k):
    data = recfeat.load_dataset(movielens_100k)
    inter = data.interactions
    s = make_split(inter, "leave-last-out")
    assert len(s.test) == inter["user"].nunique() == 943  # every user has 20+ ratings
    assert s.report["users_with_one_interaction"] == 0
    latest = inter.groupby("user")["timestamp"].max()
    assert (s.test.set_index("user")["timestamp"] == latest.loc[s.test["user"]].to_numpy()).all()
    # the split's last training item per user is the one the models' histories end with
    users, u = np.unique(s.train["user"], return_inverse=True)
    items, i = np.unique(s.train["item"], return_inverse=True)
    h = Histories.of(u, i, s.train, len(users))
    last_t = s.train.groupby("user")["timestamp"].max()
    for code in range(0, len(users), 97):
        item = items[h.of_user(code)[-1]]
        row = s.train[(s.train["user"] == users[code]) & (s.train["item"] == item)]
        assert row["timestamp"].iloc[0] == last_t.loc[users[code]]
