"""recfeat.jsonable: the one rule every JSON writer uses."""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from pathlib import Path

import numpy as np
import pytest

from recfeat.jsonable import dumps, jsonable


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: float
    tags: tuple[str, ...]


def test_plain_values_pass_and_containers_become_lists_and_dicts():
    assert jsonable({"a": (1, 2.5, None, True), 3: "x"}) == {"a": [1, 2.5, None, True], "3": "x"}
    assert jsonable({"b", "a"}) == ["a", "b"]
    assert jsonable(Point(1.0, ("t",))) == {"x": 1.0, "tags": ["t"]}
    assert jsonable(Colour.RED) == "red"
    assert jsonable(Path("/tmp/x")) == "/tmp/x"


def test_numpy_without_importing_it_here():
    out = jsonable({"i": np.int64(3), "f": np.float32(0.5), "b": np.bool_(True),
                    "a": np.arange(3), "m": np.ones((2, 2))})  # fmt: skip
    assert out == {"i": 3, "f": 0.5, "b": True, "a": [0, 1, 2], "m": [[1.0, 1.0], [1.0, 1.0]]}
    assert type(out["i"]) is int and type(out["b"]) is bool
    json.dumps(out)


def test_non_finite_floats():
    assert jsonable([math.nan, math.inf, -math.inf, np.float64("nan")]) == [None] * 4
    assert jsonable([math.nan, -math.inf], nonfinite="repr") == ["nan", "-inf"]
    assert dumps({"x": math.nan}) == '{"x": null}'
    with pytest.raises(ValueError):
        jsonable(1.0, nonfinite="zero")


def test_writers_share_it(tmp_path):
    import hashlib

    from recfeat.bench.report import write_report
    from recfeat.extraction.cache import fingerprint_digest, vector_fingerprint

    out = write_report(tmp_path / "r", {"rows": [{"seq_per_s": np.float64("nan"), "n": np.int64(2)}]})
    data = json.loads((out / "results.json").read_text())
    assert data["rows"] == [{"seq_per_s": None, "n": 2}]
    # the vector-cache key of a plain fingerprint is what json.dumps(default=str) gave, so
    # switching to jsonable did not invalidate existing caches
    fp = {"encoder": "minilm", "max_length": 256, "pooling": "mean", "options": (1, "a"),
          "model": Path("/m"), "normalize": True, "weights_sha256": "ab"}
    old = json.dumps(vector_fingerprint(fp), sort_keys=True, default=str)
    assert fingerprint_digest(fp) == hashlib.sha256(old.encode("utf-8")).digest()
