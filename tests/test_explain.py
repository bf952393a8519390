"""Explanations (issue 24, parts 2 and 3): their shape, the own-history-only rule (a planted
review by another user must never appear: Python, CLI table and JSON, serve), that each
model's ``explains`` declaration matches what it returns, that re-scoring an unedited
history (fold-in) gives the model's own scores, and the deletion test on cases built so the
answer is known.

The encoder is a bag-of-words stand-in registered here (``explain-words``): texts that share
words get close vectors, so "the sentence closest to the item" has a known answer, and the
whole extraction pipeline (token features included) runs in seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import assert_one_line_error

import recfeat
from recfeat.components.encoder import Encoder
from recfeat.errors import DataError, UsageError

TESTS = Path(__file__).resolve().parent
#: another user's review of every item carries this: it must never reach an explanation
PLANTED = "Zyxplanted Quuxsecret"
DIM = 64
TOPICS = {
    "tuner": "tuner pitch clip", "strings": "strings bright tone", "capo": "capo clamp fret",
    "picks": "picks thin grip", "strap": "strap leather comfy", "cable": "cable jack noise",
    "amp": "amp loud warm", "pedal": "pedal fuzz drive", "stand": "stand sturdy fold",
    "mic": "mic vocal clear",
}  # fmt: skip
CLUSTERS = (["tuner", "strings", "capo", "picks", "strap"], ["cable", "amp", "pedal", "stand", "mic"])
ALICE = ["strings", "capo", "picks", "cable"]
ALICE_TEXTS = {
    "strings": "Nice strings that sound bright. The tone stays clear for weeks.",
    "capo": "The capo has a firm clamp. Works well on every fret.",
    "picks": "Thin picks with a good grip.",
    "cable": "The cable jack crackles with noise.",
}


class WordsEncoder(Encoder):
    """Unit-length hashed bag of lower-case words: a deterministic stand-in for a model."""

    name = "explain-words"
    backend = "fake"

    def __init__(self, max_length: int = 256):
        self.max_length = max_length

    @property
    def dim(self) -> int:
        return DIM

    def encode(self, texts, per_text: bool = False):
        out = np.zeros((len(texts), DIM), np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z]+", text.lower()):
                out[row, int(hashlib.sha256(word.encode()).hexdigest(), 16) % DIM] += 1.0
        if per_text:
            self.last_stats = {"n_kept": np.full(len(texts), 8, np.int64),
                               "n_dropped": np.zeros(len(texts), np.int64), "tokenize_seconds": 0.0}  # fmt: skip
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def register_words() -> None:
    from recfeat import get_registry

    registry = get_registry("encoder")
    if WordsEncoder.name not in registry:
        registry.register(WordsEncoder)


def reviews_frame() -> pd.DataFrame:
    """16 users reviewing items mostly from one of two clusters, alice, and mallory, who
    reviewed every item with the planted string."""
    rng = np.random.default_rng(3)
    rows, t = [], 1_600_000_000
    for u in range(16):
        mine = list(rng.choice(CLUSTERS[u % 2], 4, replace=False)) + [rng.choice(CLUSTERS[1 - u % 2])]
        for item in mine:
            t += 1
            rows.append((f"u{u}", item, f"Nice {TOPICS[item]}. Works {rng.choice(['well', 'fine'])}.", t))
    for item in ALICE:
        t += 1
        rows.append(("alice", item, ALICE_TEXTS[item], t))
    for item in TOPICS:
        t += 1
        rows.append(("mallory", item, f"{PLANTED} said this {item} is {TOPICS[item]}.", t))
    frame = pd.DataFrame(rows, columns=["user", "item", "text", "timestamp"])
    return frame.assign(rating=5.0)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    register_words()
    root = tmp_path_factory.mktemp("explain")
    frame = reviews_frame()
    csv = root / "reviews.csv"
    frame.to_csv(csv, index=False)
    data = recfeat.load_dataset(frame)
    enc = WordsEncoder()
    reviews = recfeat.extract(data, level="review", encoder=enc, token_features="tfidf", cache=False)
    review_path = reviews.save(root / "reviews.parquet")
    items = recfeat.extract(data, level="item", encoder=enc, cache=False)
    item_path = items.save(root / "items.parquet")
    features = recfeat.read_features(review_path)
    content = recfeat.train(data, "content", item_features=features)
    content_path = recfeat.save_model(content, root / "content.recfeat")
    return {"root": root, "frame": frame, "csv": csv, "data": data, "features": features,
            "review_path": review_path, "item_path": item_path, "content": content,
            "content_path": content_path}  # fmt: skip


def _own_words(frame) -> set[str]:
    texts = frame.loc[frame["user"] == "alice", "text"].str.lower()
    return {w for t in texts for w in re.findall(r"[a-z]+", t)}


# -- shape and the own-history rule ----------------------------------------------------------
def test_an_explanation_cites_only_the_users_own_history_sentences_and_words(world):
    expl = recfeat.explain(world["content"], "alice", k=4, data=world["data"])
    assert expl["user"] == "alice" and expl["model"] == "content"
    assert expl["explains"] == ["history", "sentences", "tokens"]
    assert expl["history_size"] == len(ALICE)
    entries = expl["items"]
    assert [e["rank"] for e in entries] == [1, 2, 3, 4]
    assert [e["score"] for e in entries] == sorted((e["score"] for e in entries), reverse=True)
    assert not {e["item"] for e in entries} & set(ALICE)  # seen items are not recommended
    own_sentences = {s for t in ALICE_TEXTS.values() for s in re.split(r"(?<=\.)\s+", t)}
    words = _own_words(world["frame"])
    for e in entries:
        assert set(e) == {"item", "score", "rank", "explains", "history", "sentences", "tokens"}
        assert 0 < len(e["history"]) <= 3
        assert {h["item"] for h in e["history"]} <= set(ALICE)
        contributions = [h["contribution"] for h in e["history"]]
        assert contributions == sorted(contributions, reverse=True) and min(contributions) > 0
        for s in e["sentences"]:
            assert s["text"] in own_sentences and s["review_item"] in ALICE
            assert s["text"].lower().split()[0] in ALICE_TEXTS[s["review_item"]].lower()
        for t in e["tokens"]:
            assert t["token"] in words and t["weight"] > 0
    # the evidence is there, so the rule below is tested on real output
    assert any(e["sentences"] for e in entries) and any(e["tokens"] for e in entries)
    json.dumps(expl)  # JSON-able as it is


def test_the_closest_sentence_is_the_one_about_the_item(world):
    """Bag-of-words vectors: alice's cable sentence shares 'cable jack noise' with the cable
    item, so of her sentences it is the closest to it."""
    expl = recfeat.explain(world["content"], "alice", ["cable"], data=world["data"],
                           include_seen=True)  # fmt: skip
    (entry,) = expl["items"]
    assert entry["sentences"][0]["text"] == "The cable jack crackles with noise."
    assert entry["sentences"][0]["review_item"] == "cable"
    assert entry["history"][0]["item"] == "cable"  # its own vector is closest to itself


def _no_planted(text: str) -> None:
    for piece in (PLANTED, *PLANTED.lower().split(), "zyxplanted", "quuxsecret"):
        assert piece.lower() not in text.lower(), piece


def test_a_planted_review_by_another_user_never_appears_python(world):
    frame = world["frame"]
    assert (frame["text"].str.contains(PLANTED)).sum() == len(TOPICS)  # the plant is there
    for name in ("content", "ease-text", "hybrid-als", "text-knn-last"):
        bundle = recfeat.train(world["data"], name, item_features=world["features"])
        expl = recfeat.explain(bundle, "alice", k=6, data=world["data"])
        text = json.dumps(expl)
        assert any(e["sentences"] for e in expl["items"]), name  # text evidence was produced
        _no_planted(text)


def test_a_planted_review_never_appears_in_the_cli_table_or_json(world):
    from recfeat.cli.main import cli

    runner = CliRunner()
    args = ["recommend", str(world["content_path"]), "--users", "alice", "--k", "6",
            "--data", str(world["csv"]), "--explain"]  # fmt: skip
    table = runner.invoke(cli, args)
    assert table.exit_code == 0, table.output
    assert "you wrote (" in table.output and "from your history:" in table.output
    assert max(len(line) for line in table.output.splitlines()) <= 80
    _no_planted(table.output)
    as_json = runner.invoke(cli, [*args, "--json"])
    assert as_json.exit_code == 0, as_json.output
    (expl,) = json.loads(as_json.output)
    assert expl["user"] == "alice" and len(expl["items"]) == 6
    _no_planted(as_json.output)


# -- serve ----------------------------------------------------------------------------------------
URL_LINE = re.compile(r"ready on (http://127\.0\.0\.1:\d+)")
LAUNCH = (f"import sys; sys.path.insert(0, {str(TESTS)!r}); import test_explain as t; "
          "t.register_words(); from recfeat.cli.main import cli; cli(prog_name='recfeat')")  # fmt: skip


@pytest.fixture(scope="module")
def server(world):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    env = {**os.environ, "RECFEAT_LOAD_PLUGINS": "", "RECFEAT_PROGRESS": "0"}
    env.pop("RECFEAT_API_KEY", None)
    log = world["root"] / "server.log"
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, "serve", "--encoder", "explain-words", "--port", "0",
         "--cleaners", "none", "--model", str(world["content_path"]),
         "--item-features", str(world["item_path"])],
        stdout=subprocess.PIPE, stderr=log.open("w"), text=True, env=env,
    )  # fmt: skip
    found: dict[str, str] = {}

    def read():
        for line in proc.stdout:
            match = URL_LINE.search(line)
            if match:
                found.setdefault("url", match.group(1))

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 120
    while "url" not in found:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"recfeat serve did not start: {log.read_text()}")
        time.sleep(0.05)
    client = httpx.Client(base_url=found["url"], timeout=60)
    yield client
    client.close()
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)


def test_serve_explains_each_path_without_the_planted_review(server, world):
    texts = list(ALICE_TEXTS.values())
    model = server.post("/recommend", json={"user": "alice", "k": 5, "explain": True,
                                            "history_texts": texts})  # fmt: skip
    assert model.status_code == 200, model.text
    body = model.json()
    assert body["source"] == "model"
    for e in body["items"]:
        assert {"item", "score", "rank", "explains", "history", "sentences", "tokens"} <= set(e)
        assert {h["item"] for h in e["history"]} <= set(ALICE)
    assert any(e["history"] for e in body["items"]) and any(e["sentences"] for e in body["items"])
    own = {s for t in texts for s in re.split(r"(?<=\.)\s+", t)}
    assert {s["text"] for e in body["items"] for s in e["sentences"]} <= own
    _no_planted(model.text)
    # an unknown user described by the request: the text profile's exact history terms
    profile = server.post("/recommend", json={"user": "newcomer", "k": 3, "explain": True,
                                              "history_items": ["cable", "amp"],
                                              "history_texts": ["Loud warm amp."]})  # fmt: skip
    body = profile.json()
    assert profile.status_code == 200 and body["source"] == "text-profile", profile.text
    assert all(e["explains"] == ["history", "sentences"] for e in body["items"])
    assert {h["item"] for e in body["items"] for h in e["history"]} <= {"cable", "amp"}
    _no_planted(profile.text)
    # nothing to go on: popularity explains nothing and says so
    popular = server.post("/recommend", json={"user": "nobody", "k": 2, "explain": True}).json()
    assert popular["source"] == "popularity" and popular["notes"]
    assert all(e["explains"] == [] and "history" not in e for e in popular["items"])
    # without explain the answer keeps its old shape
    plain = server.post("/recommend", json={"user": "alice", "k": 2}).json()
    assert set(plain["items"][0]) == {"item", "score", "raw_score"} and "notes" not in plain


# -- every model says what it explains, and returns exactly that ----------------------------------
FAST_OPTIONS = {"sasrec": {"epochs": 2, "dim": 16}, "sasrec-text": {"epochs": 2, "dim": 16},
                "hybrid-als": {"iterations": 3}, "als": {"iterations": 3},
                "bpr": {"iterations": 3}, "mf": {"iterations": 2}}  # fmt: skip


def _model_names() -> list[str]:
    from recfeat.plugins.models import model_classes

    return [cls.name for cls in model_classes()]


@pytest.mark.parametrize("name", _model_names())
def test_each_model_explains_what_it_declares(world, name):
    model = recfeat.model(name, **FAST_OPTIONS.get(name, {}))
    model.fit(world["data"].interactions,
              item_features=world["features"] if model.uses_text else None)  # fmt: skip
    if not model.explains:
        with pytest.raises(UsageError, match="explains nothing") as info:
            recfeat.explain(model, "alice", data=world["data"])
        assert "\n" not in str(info.value)
        return
    expl = recfeat.explain(model, "alice", k=4, data=world["data"])
    assert expl["explains"] == list(model.explains)
    kinds = {"history", "sentences", "tokens"}
    for entry in expl["items"]:
        assert kinds & set(entry) == set(model.explains), entry
    assert any(e["history"] for e in expl["items"])  # the model's own terms were found
    for kind in ("sentences", "tokens"):
        if kind in model.explains:
            assert any(e[kind] for e in expl["items"]), (name, kind, expl["notes"])
    _no_planted(json.dumps(expl))


# -- two paths that must agree: fold-in of the unedited history and the model's own scores --------
def _history(model, frame, user):
    from recfeat.explanations.history import user_history

    return user_history(model, user, interactions=frame)


EXACT = [("ease", {}), ("ease-text", {}), ("content", {}), ("content", {"popularity_weight": 1.0}),
         ("content", {"token_weight": 0.5}), ("ease-text", {"token_weight": 0.5}),
         ("item-knn-last", {"last": 2}), ("text-knn-last", {"last": 3}),
         ("sasrec", {"epochs": 2, "dim": 16}), ("sasrec-text", {"epochs": 2, "dim": 16})]  # fmt: skip


@pytest.mark.parametrize(("name", "options"), EXACT, ids=[f"{n}{o}" for n, o in EXACT])
def test_fold_in_of_the_unedited_history_gives_the_models_own_scores(world, name, options):
    model = recfeat.model(name, **options)
    inter = world["data"].interactions
    model.fit(inter, item_features=world["features"] if model.uses_text else None)
    items = model.items_
    own = model.score_items(model.users_, items)
    # float32 networks: a batch of users and one user differ in the last bits
    tol = {"rtol": 1e-4, "atol": 1e-6} if name.startswith("sasrec") else {"rtol": 1e-6, "atol": 1e-9}
    for row, user in enumerate(model.users_):
        history = _history(model, inter, user)
        if set(history) == set(items):
            continue  # mallory has every item: a profile of cancelling vectors, nothing to rank
        folded = model.fold_in(history, items)
        np.testing.assert_allclose(folded, own[row], **tol, err_msg=user)
        terms = model.history_contributions(history, items)
        assert terms.shape == (len(history), len(items))
        if name in ("ease", "ease-text") or (name == "content" and not options):
            # exact decompositions: the terms add up to the score
            np.testing.assert_allclose(terms.sum(axis=0), folded, rtol=1e-6, atol=1e-9)


def test_als_history_terms_are_implicits_own_explain(world):
    """Our solve against implicit's ``explain`` (its Cholesky path) on the same factors."""
    from implicit.cpu.als import AlternatingLeastSquares
    from scipy.sparse import csr_matrix

    model = recfeat.model("als", factors=8, iterations=5)
    inter = world["data"].interactions
    model.fit(inter)
    ref = AlternatingLeastSquares(factors=8, regularization=model.regularization,
                                  alpha=model.alpha, random_state=0)  # fmt: skip
    ref.item_factors = model.item_factors_.astype(np.float32)
    ref.user_factors = model.user_factors_.astype(np.float32)
    history = _history(model, inter, "alice")
    codes = model.item_codes(history)
    user_items = csr_matrix((np.ones(len(codes), np.float32), ([0] * len(codes), codes)),
                            shape=(1, len(model.items_)))  # fmt: skip
    terms = model.history_contributions(history, model.items_)
    for col, item in enumerate(model.items_):
        total, top, _ = ref.explain(0, user_items, int(model.item_codes([item])[0]), N=50)
        assert terms[:, col].sum() == pytest.approx(total, rel=1e-3, abs=1e-5)
        theirs = {model.items_[i]: s for i, s in top}
        for pos, h in enumerate(history):
            assert terms[pos, col] == pytest.approx(theirs[h], rel=1e-3, abs=1e-5)


def test_hybrid_als_fold_in_is_its_own_user_solve(world):
    from recfeat.plugins.models.hybrid_als import _solve_side

    model = recfeat.model("hybrid-als", iterations=4)
    inter = world["data"].interactions
    model.fit(inter, item_features=world["features"])
    history = _history(model, inter, "alice")
    codes = np.unique(model.item_codes(history))
    user = _solve_side(model.item_factors_, [codes], model.alpha, model.reg, None)[0]
    np.testing.assert_allclose(model.fold_in(history, model.items_),
                               model.item_factors_ @ user, rtol=1e-6, atol=1e-9)  # fmt: skip
    # the stored factor was solved half an iteration earlier: close, not equal
    stored = model.score_items(["alice"], model.items_)[0]
    assert np.corrcoef(stored, model.item_factors_ @ user)[0, 1] > 0.9


# -- the deletion test on cases whose answer is known ----------------------------------------------
def _keyed_interactions() -> pd.DataFrame:
    """Twenty users have both "key" and "target"; fillers f0..f29 are each shared by a few
    users at random and never with target. Alice has key and four fillers: target is hers
    because of key alone."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(20):
        rows += [(f"k{u}", "key"), (f"k{u}", "target")]
        rows += [(f"k{u}", f"f{j}") for j in rng.choice(30, 2, replace=False)]
    for u in range(40):
        rows += [(f"r{u}", f"f{j}") for j in rng.choice(30, 4, replace=False)]
    rows += [("alice", i) for i in ("key", "f1", "f2", "f3", "f4")]
    frame = pd.DataFrame(rows, columns=["user", "item"]).drop_duplicates()
    return frame.assign(rating=1.0, timestamp=np.arange(len(frame)))


def _keyed_content_features() -> recfeat.Features:
    """key and target share one direction no filler has; fillers f0-f14 share a weak one
    (0.3) and f15-f29 another, over independent noise: alice's fillers (f1-f4) pull the
    profile only weakly towards f0-f14, so target, which matches key, tops her list, and
    without key the f0-f14 fillers overtake it."""
    rng = np.random.default_rng(1)
    ids = ["key", "target"] + [f"f{j}" for j in range(30)]
    vecs = np.zeros((len(ids), 400))
    vecs[0, 0] = vecs[1, 0] = 1.0
    vecs[2:, 3:] = rng.normal(scale=1 / np.sqrt(397), size=(30, 397))
    vecs[2:17, 1] = vecs[17:, 2] = 0.3
    return recfeat.Features(ids, vecs, {"level": "item"})


@pytest.mark.parametrize("name", ["ease", "content"])
def test_the_deletion_test_finds_the_one_item_a_recommendation_rests_on(name):
    from recfeat.explanations.faithfulness import FaithSettings, summarise, user_trial

    inter = _keyed_interactions()
    model = recfeat.model(name)
    model.fit(inter, item_features=_keyed_content_features() if model.uses_text else None)
    history = ["key", "f1", "f2", "f3", "f4"]
    candidates = np.asarray(model.items_, dtype=object)
    seen = np.isin(candidates, history)
    k = 3
    scores = model.fold_in(history, candidates)
    scores[seen] = np.nan
    assert candidates[np.nanargmax(scores)] == "target"
    terms = model.history_contributions(history, ["target"])[:, 0]
    assert history[int(np.argmax(terms))] == "key"  # the explanation cites key
    # removing key drops target; removing any other history item does not
    for drop in history:
        s = model.fold_in([h for h in history if h != drop], candidates)
        s[seen] = np.nan
        top = set(candidates[np.argsort(-np.nan_to_num(s, nan=-np.inf))[:k]])
        assert ("target" in top) == (drop != "key"), drop
    settings = FaithSettings(k=k, cite=(1,), draws=40)
    trial = user_trial(model, history, candidates, seen, settings, np.random.default_rng(0))
    # over the whole top list, cited deletions drop items more often than random ones
    assert trial[1]["deletion_cited"] > trial[1]["deletion_random"]
    summary = summarise([trial, trial], settings)
    assert summary["1"]["users"] == 2 and summary["1"]["deletion_ratio"]["ratio"] > 1


def test_user_trial_counts_exactly_on_a_one_item_top_list():
    """k = 1 and target on top: the cited deletion always drops it; a random draw drops it
    exactly when it picks key, which the seeded generator's picks say how often."""
    from recfeat.explanations.faithfulness import FaithSettings, user_trial

    inter = _keyed_interactions()
    model = recfeat.model("ease").fit(inter)
    history = ["key", "f1", "f2", "f3", "f4"]
    candidates = np.asarray(model.items_, dtype=object)
    seen = np.isin(candidates, history)
    settings = FaithSettings(k=1, cite=(1,), draws=50)
    trial = user_trial(model, history, candidates, seen, settings, np.random.default_rng(7))[1]
    rng = np.random.default_rng(7)
    picks = [rng.choice(np.array(history, dtype=object), 1, replace=False)[0] for _ in range(50)]
    assert trial["deletion_cited"] == 1.0 and trial["sufficiency_cited"] == 1.0
    assert trial["deletion_random"] == pytest.approx(np.mean([p == "key" for p in picks]))
    assert trial["sufficiency_random"] == pytest.approx(np.mean([p == "key" for p in picks]))


# -- explain-eval ---------------------------------------------------------------------------------------
def test_explain_eval_writes_json_markdown_and_a_plot(world, tmp_path):
    from recfeat.cli.main import cli

    result = CliRunner().invoke(cli, [
        "explain-eval", str(world["csv"]), "--models", "content,ease,popularity",
        "--features", str(world["review_path"]), "--users", "10", "--cite", "1",
        "--draws", "2", "--k", "3", "--test-fraction", "0.3", "--out", str(tmp_path / "ex"),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "ex.json").read_text())
    rows = {r["model"]: r for r in report["models"]}
    assert "explains nothing" in rows["popularity"]["skipped"]
    for name in ("content", "ease"):
        entry = rows[name]["by_cite"]["1"]
        assert entry["users"] >= 2
        for key in ("deletion_cited", "deletion_random", "sufficiency_cited", "sufficiency_random"):
            assert 0 <= entry[key]["low"] <= entry[key]["rate"] <= entry[key]["high"] <= 1
    assert "| content | 1 |" in (tmp_path / "ex.md").read_text()
    assert (tmp_path / "ex.png").read_bytes()[:4] == b"\x89PNG"


# -- bad input: one clear line ----------------------------------------------------------------------
def test_bad_input_is_one_clear_line(world):
    with pytest.raises(DataError, match="not one the model was trained on") as info:
        recfeat.explain(world["content"], "stranger", data=world["data"])
    assert "\n" not in str(info.value)
    pop = recfeat.train(world["data"], "popularity")
    with pytest.raises(UsageError, match="explains nothing"):
        recfeat.explain(pop, "alice")
    fitted = recfeat.model("als", iterations=2).fit(world["data"].interactions)
    with pytest.raises(UsageError, match="pass data"):
        recfeat.explain(fitted, "alice")  # ALS keeps no per-user history
    from recfeat.cli.main import cli

    runner = CliRunner()
    path = recfeat.save_model(pop, world["root"] / "pop.recfeat")
    assert_one_line_error(runner.invoke(cli, ["recommend", str(path), "--users", "alice",
                                              "--explain"]), 2, "explains nothing")  # fmt: skip
    assert_one_line_error(runner.invoke(cli, ["recommend", str(world["content_path"]), "--users",
                                              "stranger", "--explain"]), 1, "stranger")  # fmt: skip
