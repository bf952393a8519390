"""The whole attack table: the first round (cases.py, issue 11) and the second (round2.py,
issue 21), with one class vocabulary."""

from __future__ import annotations

from benchmarks.attack.cases import CASES as ROUND1
from benchmarks.attack.cases import CLASSES as CLASSES1
from benchmarks.attack.round2 import CASES2, CLASSES2

CLASSES = {**CLASSES1, **CLASSES2}
CASES = [*ROUND1, *CASES2]
BY_NAME = {c.name: c for c in CASES}
assert len(BY_NAME) == len(CASES), "two attack cases share a name"
