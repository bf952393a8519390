"""Leak detectors run before every evaluation, and the product-variant merge that fixes the
first of them.

Each detector returns ``{"status": "ok"|"warn"|"refused"|"skipped", "message": one line,
...counts}``; ``evaluate`` puts them in ``result.info["leaks"]`` and the CLI prints one line
each. Texts are compared NORMALISED (lower case, runs of non-word characters -> one space)
and only when NON-TRIVIAL: at least ``MIN_WORDS`` words. Shorter texts are stock phrases
("Five Stars. Great product") that one person can honestly write for two products.

- ``variant_duplicates``: one review attached to several product variants (Amazon shows a
  review on every colour/size of a product, and the 5-core files keep each copy under the
  variant's item id): the same user with the same non-trivial text at the same time on
  different items (Amazon stamps every copy with the review's time; without timestamps,
  user and text alone). A held-out copy then has an identical twin in training. Requiring
  the same time keeps apart a person who reuses a sentence on different days (every
  variant group in the shared Amazon files has one timestamp). Rule: REFUSE when the copies touch
  at least ``REFUSE_SHARE`` (1%) of the interactions, because a figure on such data
  measures the duplication; WARN below that, with the counts. The fix, named in the
  message, is ``--merge-variants`` (``merge_variants``): union-find over the items that share
  an identical (user, text, time), each group mapped to one id (its smallest item id), repeated
  (user, group) rows kept once (the first by time, then row order).
- ``test_text_in_train``: held-out review texts that occur verbatim (normalised) in a
  training review, by any user: warned with the count (a text model can match them).
- features provenance (``check_provenance``): an item- or user-level features file without
  provenance metadata (a stripped manifest) cannot be told apart from one aggregated over
  all reviews, held-out ones included, so it is refused unless ``trust_features`` says the
  vectors come from texts that exist without interactions. Review-level files are always
  safe: the evaluation averages training reviews only.

The training-lineage check (features made by a fine-tuned encoder or changed by a fitted
adaptor) lives in ``recfeat.finetuning.guard``, a layer above this one: ``recfeat.evaluate``
runs it and adds its results here as ``item_features_training``/``user_features_training``.
"""

from __future__ import annotations

import dataclasses
import re
import weakref
from typing import Any

import numpy as np
import pandas as pd

from recfeat.data.features import Features, ReviewVectors
from recfeat.errors import DataError, UsageError

MIN_WORDS = 8
REFUSE_SHARE = 0.01


_WORD = re.compile(r"[^\W_]+")
# Normalised texts per reviews frame, reused while the frame lives (tuning evaluates the same
# data many times; normalising 10k reviews costs about a second).
_CACHE: dict[int, tuple[weakref.ref, pd.DataFrame]] = {}


def normalise(texts: pd.Series) -> pd.Series:
    """Lower case, words joined by one space; '' for texts under MIN_WORDS words."""
    out = []
    for text in texts.fillna("").astype(str).tolist():
        words = _WORD.findall(text.lower())
        out.append(" ".join(words) if len(words) >= MIN_WORDS else "")
    return pd.Series(out, index=texts.index, dtype=object)


def _texts(data) -> pd.DataFrame | None:
    reviews = getattr(data, "reviews", None)
    if reviews is None or "text" not in reviews.columns:
        return None
    hit = _CACHE.get(id(reviews))
    if hit is not None and hit[0]() is reviews and len(hit[1]) == len(reviews):
        return hit[1]
    frame = pd.DataFrame(
        {
            "user": reviews["user"].astype(str).to_numpy(),
            "item": reviews["item"].astype(str).to_numpy(),
            "norm": normalise(reviews["text"]).to_numpy(),
            "ts": pd.to_numeric(reviews["timestamp"], errors="coerce").fillna(-1).to_numpy()
            if "timestamp" in reviews.columns
            else -1,
        }
    )
    for key in [k for k, (ref, _) in _CACHE.items() if ref() is None]:
        del _CACHE[key]
    _CACHE[id(reviews)] = (weakref.ref(reviews), frame)
    return frame


VARIANT_KEY = ["user", "norm", "ts"]


def _variant_rows(texts: pd.DataFrame) -> pd.DataFrame:
    """Rows whose (user, non-trivial text, time) also occurs on another item."""
    texts = texts[texts["norm"] != ""]
    n_items = texts.groupby(VARIANT_KEY)["item"].transform("nunique")
    return texts[n_items > 1]


def variant_duplicates(data, split=None) -> dict[str, Any]:
    """Detector (a); see the module doc. ``split`` adds how many held-out rows have a twin."""
    texts = _texts(data)
    if texts is None:
        return {"status": "skipped", "message": "no review texts to compare"}
    rows = _variant_rows(texts)
    n_inter = max(len(data.interactions), 1)
    groups = _groups(rows)
    out: dict[str, Any] = {
        "rows": int(len(rows)),
        "items": int(rows["item"].nunique()),
        "groups": int(len(set(groups.values()))),
        "share": round(len(rows) / n_inter, 5),
        "rule": f"refuse at >= {REFUSE_SHARE:.0%} of interactions, warn below",
    }
    if split is not None and len(rows):
        train_keys = set(zip(split.train["user"], split.train["item"], strict=False))
        test_keys = set(zip(split.test["user"], split.test["item"], strict=False))
        key = list(zip(rows["user"], rows["item"], strict=False))
        in_train = rows[[k in train_keys for k in key]]
        in_test = rows[[k in test_keys for k in key]]
        twins = in_test.merge(in_train[VARIANT_KEY].drop_duplicates(), on=VARIANT_KEY)
        out["test_rows_with_training_twin"] = int(len(twins))
    if not len(rows):
        return {**out, "status": "ok", "message": "no review is attached to several items"}
    what = (
        f"{len(rows)} reviews ({out['share']:.2%} of interactions) repeat the same user's "
        f"identical text, same time, on another item ({out['items']} items in "
        f"{out['groups']} variant "
        "groups)"
    )
    if len(rows) / n_inter >= REFUSE_SHARE:
        return {
            **out,
            "status": "refused",
            "message": f"{what}; held-out copies have twins in training: pass --merge-variants "
            "(merge_variants=True) to merge them into one product first",
        }
    return {
        **out,
        "status": "warn",
        "message": f"{what}; below 1%, kept (--merge-variants merges them)",
    }


def held_out_text_in_train(data, split) -> dict[str, Any]:
    """Detector (b): held-out review texts found verbatim in training reviews."""
    texts = _texts(data)
    if texts is None:
        return {"status": "skipped", "message": "no review texts to compare"}
    keys = pd.MultiIndex.from_arrays([texts["user"], texts["item"]])
    train = keys.isin(pd.MultiIndex.from_arrays([split.train["user"], split.train["item"]]))
    test = keys.isin(pd.MultiIndex.from_arrays([split.test["user"], split.test["item"]]))
    seen = set(texts["norm"][train]) - {""}
    norm = texts["norm"][test]
    hits = int(norm.isin(seen).sum())
    out = {"test_reviews": int(test.sum()), "found_in_training": hits}
    if hits:
        return {
            **out,
            "status": "warn",
            "message": f"{hits} of {out['test_reviews']} held-out review texts occur verbatim in "
            "training reviews (a text model can match them; see variant duplicates)",
        }
    return {**out, "status": "ok", "message": "no held-out review text occurs in training"}


def check_provenance(features, data, *, trust: bool = False, role: str = "item") -> dict[str, Any]:
    """Detector (c): refuse item/user vectors whose origin cannot be checked."""
    if features is None:
        return {"status": "skipped", "message": f"no {role} features"}
    if isinstance(features, ReviewVectors):
        return {
            "status": "ok",
            "message": "review-level: each split averages its training reviews only",
        }
    manifest = features.manifest or {}
    if manifest.get("source") or manifest.get("level"):
        return {
            "status": "ok",
            "message": f"source {manifest.get('source', manifest.get('level'))!r}",
        }
    where = manifest.get("path")
    review_only = (
        getattr(data, "items", None) is None and getattr(data, "reviews", None) is not None
    )
    if not where and not review_only:
        # Made in code on data that has no review text: nothing held out could be in it.
        return {"status": "ok", "message": "in-memory vectors; the data has no review text"}
    if trust:
        return {
            "status": "warn",
            "message": f"{role} features without provenance accepted (trust_features)",
        }
    name = where or f"the {role} features given"
    why = (
        "this data's only text is its reviews, so they can only come from reviews"
        if review_only
        else "they may be aggregated from all reviews, held-out ones included"
    )
    raise UsageError(
        f"{name} has no provenance metadata (source/level; manifest stripped?) and {why}; "
        "re-extract with recfeat extract (--level review for reviews), or pass "
        "--trust-features if they come from item texts only"
    )


# -- merging product variants -------------------------------------------------------------
def _groups(rows: pd.DataFrame) -> dict[str, str]:
    """item -> group id (smallest item id in its group), union-find over shared texts."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for _, items in rows.groupby(VARIANT_KEY)["item"]:
        items = sorted(set(items))
        for other in items[1:]:
            a, b = find(items[0]), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return {item: find(item) for item in parent}


def variant_mapping(data) -> dict[str, str]:
    """Item id -> product group id for every item in a variant group (others unchanged)."""
    texts = _texts(data)
    if texts is None:
        return {}
    return {k: v for k, v in _groups(_variant_rows(texts)).items() if k != v}


def merge_variants(data):
    """``(merged RecData, mapping)``: variant items share one id; see the module doc."""
    import dataclasses

    mapping = variant_mapping(data)
    if not mapping:
        return data, mapping

    def remap(frame: pd.DataFrame | None, key=("user", "item")) -> tuple[pd.DataFrame | None, int]:
        if frame is None:
            return None, 0
        out = frame.assign(item=frame["item"].astype(str).replace(mapping))
        order = np.arange(len(out))
        if "timestamp" in out.columns:  # keep the first by time, then row order
            t = pd.to_numeric(out["timestamp"], errors="coerce").fillna(-1).to_numpy()
            order = np.lexsort((order, t))
        first = out.iloc[order].drop_duplicates(list(key), keep="first").sort_index()
        return first.reset_index(drop=True), len(out) - len(first)

    inter, dropped = remap(data.interactions)
    reviews, _ = remap(data.reviews)
    items, _ = remap(data.items, key=("item",))
    report = {
        **data.report,
        "variants_merged": {
            "items_renamed": len(mapping),
            "groups": len(set(mapping.values())),
            "interactions_dropped": dropped,
            "rule": "items sharing an identical (user, non-trivial text, time) -> one group id "
            "(smallest item id)",
        },
    }
    return dataclasses.replace(data, interactions=inter, reviews=reviews, items=items,
                               report=report), mapping  # fmt: skip


def remap_features(features, mapping: dict[str, str]):
    """Item or review features re-keyed to merged product ids (first vector of a group kept)."""
    if features is None or not mapping:
        return features
    if isinstance(features, ReviewVectors):
        items = np.asarray([mapping.get(i, i) for i in features.items], dtype=object)
        keep = ~pd.DataFrame({"u": features.users, "i": items}).duplicated().to_numpy()
        return dataclasses.replace(
            features.subset(keep), items=items[keep],
            manifest={**features.manifest, "variants_merged": len(mapping)},
        )  # fmt: skip
    if features.manifest.get("id_column") == "user":
        return features
    ids = np.asarray([mapping.get(i, i) for i in features.ids], dtype=object)
    # The group's own id first, so the group keeps the representative item's vector.
    order = np.lexsort((np.arange(len(ids)), ids != features.ids))
    keep = order[~pd.Series(ids[order]).duplicated().to_numpy()]
    keep.sort()
    tokens = None if features.tokens is None else features.tokens[keep]
    return Features(ids[keep], features.vectors[keep],
                    {**features.manifest, "variants_merged": len(mapping)},
                    tokens, features.token_columns)  # fmt: skip


def run_detectors(data, split, item_features, user_features, *, trust_features: bool = False):
    """Every detector; raises on a refusal, else returns the results for ``result.info``."""
    out = {
        "variant_duplicates": variant_duplicates(data, split),
        "test_text_in_train": held_out_text_in_train(data, split),
        "item_features": check_provenance(item_features, data, trust=trust_features),
        "user_features": check_provenance(user_features, data, trust=trust_features, role="user"),
    }
    if out["variant_duplicates"]["status"] == "refused":
        raise DataError(out["variant_duplicates"]["message"])
    return out
