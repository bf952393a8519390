"""Training pairs for the contrastive loss, from the TRAINING part of a split only.

Kinds (``recfeat.finetuning.settings.PAIR_KINDS``):

- ``next-item``: in each user's time-ordered training history (ties and unknown times: the
  interactions table's order), the text of one interaction -> the text of the next. An
  interaction's text is its item's text when the data has item texts, else the user's own
  review of it. Interactions without text are left out before pairing, so a pair joins
  consecutive interactions that have text.
- ``same-item``: two training reviews of one item (by different users: a (user, item) pair
  occurs once), consecutive in a seeded shuffle of that item's reviews, at most
  ``pairs_per_item`` per item.
- ``review-item``: a training review -> its item's text.

Leak-proof by construction: every text comes from a training interaction's review or from
the item text of an item that has a training interaction, so no test row's review and no
cold item's text can enter a pair. ``Pairs.rows`` lists the interactions whose text or order
entered a pair and ``Pairs.items`` every item whose text did; the manifest keeps both so a
later evaluation can prove it does not test on them (``recfeat.finetuning.lineage``).

Pairs whose two texts are equal teach nothing (and are a false negative for every other
anchor in the batch), and empty texts carry nothing: both are dropped and counted.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from recfeat.data.recdata import RecData
from recfeat.errors import DataError

from .settings import PAIR_KINDS

COLUMNS = ("anchor", "positive", "kind", "anchor_user", "anchor_item", "positive_user",
           "positive_item")  # fmt: skip


@dataclasses.dataclass
class Pairs:
    """Pairs for training. ``frame``: one row per pair (``COLUMNS``: the two texts, the kind,
    and the (user, item) interaction behind each side; the user is empty where a side is an
    item text with no interaction behind it: review-item's positive); ``counts``: pairs kept per kind; ``available``:
    pairs per kind before ``max_pairs``; ``dropped``: pairs left out, by reason; ``rows``:
    the (user, item) training interactions that entered a pair; ``items``: the items whose
    text (item text or a review) entered a pair; ``text_source``: where next-item texts came
    from ("item" or "review")."""

    frame: pd.DataFrame
    counts: dict[str, int]
    available: dict[str, int]
    dropped: dict[str, int]
    rows: pd.DataFrame
    items: list[str]
    text_source: str | None

    def __len__(self) -> int:
        return len(self.frame)

    def digest(self) -> str:
        """sha256 of the pairs in order (kind, anchor, positive): what the model was trained on."""
        h = hashlib.sha256()
        for kind, a, p in zip(self.frame["kind"], self.frame["anchor"], self.frame["positive"], strict=True):
            h.update(f"{kind}\x1f{a}\x1f{p}\x1e".encode())
        return h.hexdigest()


def supported_kinds(data: RecData) -> tuple[str, ...]:
    """The pair kinds ``data`` has texts for."""
    has_reviews = data.reviews is not None and len(data.reviews) > 0
    has_items = data.items is not None and len(data.items) > 0
    return tuple(k for k, ok in (("next-item", has_reviews or has_items), ("same-item", has_reviews),
                                 ("review-item", has_reviews and has_items)) if ok)  # fmt: skip


def _present(texts: pd.Series) -> np.ndarray:
    return texts.fillna("").astype(str).str.strip().ne("").to_numpy()


def training_reviews(data: RecData, train: pd.DataFrame) -> pd.DataFrame:
    """Reviews of training interactions only: one per (user, item) (the latest when a pair
    repeats, ties by table order), with text; columns user, item, text, order."""
    if data.reviews is None or len(data.reviews) == 0:
        return pd.DataFrame({"user": [], "item": [], "text": [], "order": []})
    rev = data.reviews
    rev = pd.DataFrame({
        "user": rev["user"].astype(str).to_numpy(), "item": rev["item"].astype(str).to_numpy(),
        "text": rev["text"].fillna("").astype(str).to_numpy(),
        "t": (rev["timestamp"].to_numpy() if "timestamp" in rev.columns else np.zeros(len(rev))),
    })  # fmt: skip
    rev = rev.sort_values("t", kind="stable").drop_duplicates(["user", "item"], keep="last")
    keys = pd.MultiIndex.from_arrays([train["user"], train["item"]])
    order = pd.Series(np.arange(len(train)), index=keys)
    rev = rev[pd.MultiIndex.from_arrays([rev["user"], rev["item"]]).isin(keys)]
    rev = rev[_present(rev["text"])]
    rev = rev.assign(order=order.reindex(pd.MultiIndex.from_arrays([rev["user"], rev["item"]])).to_numpy())
    return rev.sort_values("order", kind="stable")[["user", "item", "text", "order"]].reset_index(drop=True)


def training_item_texts(data: RecData, train: pd.DataFrame) -> pd.Series:
    """item -> text for items that have a training interaction and a non-empty text (the
    last row when an item repeats): a cold item's text is never in it."""
    if data.items is None or len(data.items) == 0:
        return pd.Series(dtype=object)
    items = pd.DataFrame({"item": data.items["item"].astype(str).to_numpy(),
                          "text": data.items["text"].fillna("").astype(str).to_numpy()})  # fmt: skip
    items = items.drop_duplicates("item", keep="last")
    items = items[items["item"].isin(set(train["item"])) & _present(items["text"])]
    return pd.Series(items["text"].to_numpy(), index=items["item"].to_numpy(), dtype=object)


def _frame(kind, anchor, positive, au, ai, pu, pi) -> pd.DataFrame:
    return pd.DataFrame({"anchor": anchor, "positive": positive, "kind": kind, "anchor_user": au,
                         "anchor_item": ai, "positive_user": pu, "positive_item": pi},
                        columns=list(COLUMNS))  # fmt: skip


def _next_item(train: pd.DataFrame, reviews: pd.DataFrame, item_texts: pd.Series) -> tuple[pd.DataFrame, str]:
    seq = pd.DataFrame({"user": train["user"].to_numpy(), "item": train["item"].to_numpy(),
                        "t": train["timestamp"].to_numpy() if "timestamp" in train.columns
                        else np.zeros(len(train)), "order": np.arange(len(train))})  # fmt: skip
    if len(item_texts):
        source = "item"
        seq["text"] = seq["item"].map(item_texts)
    else:
        source = "review"
        by_pair = pd.Series(reviews["text"].to_numpy(),
                            index=pd.MultiIndex.from_arrays([reviews["user"], reviews["item"]]))  # fmt: skip
        seq["text"] = by_pair.reindex(pd.MultiIndex.from_arrays([seq["user"], seq["item"]])).to_numpy()
    seq = seq[seq["text"].notna()].sort_values(["user", "t", "order"], kind="stable")
    same_user = seq["user"].to_numpy()[1:] == seq["user"].to_numpy()[:-1]
    first, second = seq.iloc[:-1][same_user], seq.iloc[1:][same_user]
    # The user is named even when the text is the item's: the pair uses the order of that
    # user's two interactions, so both rows were used for training.
    frame = _frame("next-item", first["text"].to_numpy(), second["text"].to_numpy(),
                   first["user"].to_numpy(), first["item"].to_numpy(),
                   second["user"].to_numpy(), second["item"].to_numpy())  # fmt: skip
    return frame, source


def _same_item(reviews: pd.DataFrame, per_item: int, rng: np.random.Generator) -> pd.DataFrame:
    parts = []
    for item, group in reviews.groupby("item", sort=True):
        if len(group) < 2:
            continue
        shuffled = group.iloc[rng.permutation(len(group))]
        n = min(per_item, len(group) - 1)
        a, b = shuffled.iloc[:n], shuffled.iloc[1 : n + 1]
        parts.append(_frame("same-item", a["text"].to_numpy(), b["text"].to_numpy(), a["user"].to_numpy(),
                            np.full(n, item, dtype=object), b["user"].to_numpy(),
                            np.full(n, item, dtype=object)))  # fmt: skip
    return pd.concat(parts, ignore_index=True) if parts else _frame("same-item", *[[]] * 6)


def _review_item(reviews: pd.DataFrame, item_texts: pd.Series) -> pd.DataFrame:
    has = reviews[reviews["item"].isin(item_texts.index)]
    return _frame("review-item", has["text"].to_numpy(), item_texts.reindex(has["item"]).to_numpy(),
                  has["user"].to_numpy(), has["item"].to_numpy(), np.full(len(has), "", dtype=object),
                  has["item"].to_numpy())  # fmt: skip


def build_pairs(data: RecData, train: pd.DataFrame, *, kinds: Sequence[str] | None = None,
                max_pairs: int | None = None, pairs_per_item: int = 4, seed: int = 0) -> Pairs:  # fmt: skip
    """Pairs of ``kinds`` (None: every kind ``data`` supports) from the interactions in
    ``train`` (the training part of a split: user and item columns, timestamp optional) and
    the texts of ``data``; at most ``max_pairs`` of each kind (a seeded sample, None: all).
    A kind the data has no texts for, or no pairs at all, is a DataError naming the fix."""
    supported = supported_kinds(data)
    wanted = tuple(kinds) if kinds else supported
    missing = [k for k in wanted if k not in supported]
    if missing:
        need = {"next-item": "reviews or item texts", "same-item": "reviews",
                "review-item": "reviews and item texts"}  # fmt: skip
        raise DataError(
            f"pair kind {missing[0]} needs {need[missing[0]]}, which {data.name} lacks; choose "
            f"from: {', '.join(supported) or 'none (the data has no texts)'}"
        )
    train = pd.DataFrame({"user": train["user"].astype(str).to_numpy(),
                          "item": train["item"].astype(str).to_numpy(),
                          **({"timestamp": train["timestamp"].to_numpy()}
                             if "timestamp" in train.columns else {})})  # fmt: skip
    # A repeated (user, item) row is one interaction (a split never has them; a hand-made
    # training table may): the first occurrence keeps its place in the history.
    train = train.drop_duplicates(["user", "item"], keep="first").reset_index(drop=True)
    rng = np.random.default_rng(seed)
    reviews = training_reviews(data, train)
    item_texts = training_item_texts(data, train)
    built: dict[str, pd.DataFrame] = {}
    source = None
    for kind in PAIR_KINDS:
        if kind not in wanted:
            continue
        if kind == "next-item":
            built[kind], source = _next_item(train, reviews, item_texts)
        elif kind == "same-item":
            built[kind] = _same_item(reviews, pairs_per_item, rng)
        else:
            built[kind] = _review_item(reviews, item_texts)
    dropped = {"identical_texts": 0}
    available, counts, frames = {}, {}, []
    for kind, frame in built.items():
        same = frame["anchor"].str.strip().to_numpy() == frame["positive"].str.strip().to_numpy()
        dropped["identical_texts"] += int(same.sum())
        frame = frame[~same]
        available[kind] = int(len(frame))
        if max_pairs is not None and len(frame) > max_pairs:
            keep = np.sort(rng.choice(len(frame), size=max_pairs, replace=False))
            frame = frame.iloc[keep]
        counts[kind] = int(len(frame))
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True)
    if len(frame) == 0:
        raise DataError(
            f"no training pairs of kind {', '.join(wanted)} in {data.name}'s training part; use "
            "more data, another split or other --pairs"
        )
    rows, items = _touched(frame)
    return Pairs(frame=frame.reset_index(drop=True),
                 counts=counts, available=available, dropped=dropped, rows=rows, items=items,
                 text_source=source)  # fmt: skip


def _touched(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The (user, item) interactions and the items that entered a pair."""
    users, items = [], []
    for side in ("anchor", "positive"):
        u, i = frame[f"{side}_user"].to_numpy(), frame[f"{side}_item"].to_numpy()
        keep = u != ""  # an item text: no interaction behind it
        users.append(u[keep])
        items.append(i[keep])
    rows = pd.DataFrame({"user": np.concatenate(users), "item": np.concatenate(items)}).astype(str)
    rows = rows.drop_duplicates().sort_values(["user", "item"], kind="stable").reset_index(drop=True)
    touched_items = set(frame["anchor_item"].astype(str)) | set(frame["positive_item"].astype(str))
    return rows, sorted(touched_items)
