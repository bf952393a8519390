"""The attack table against the current tree: issue 11's round (benchmarks/attack/cases.py)
and issue 21's (benchmarks/attack/round2.py: planted journals and manifests, the Python API
as a process, Ray misuse, and HTTP cases against a real `recfeat serve` on loopback).

One test per case. Each runs ``recfeat`` as a real process in a fresh folder built from the
real datasets and checks what run_attack.py counts: exit code, a one-line message naming
the problem and the fix, no traceback, no input or earlier output changed, no partial or
temporary file left, no terminal control character printed, no code run from a model file,
no wrong data accepted in silence.

The cases run once per session, two at a time (they are independent processes), and each
test reads its case's record. By default only the *fast* cases run (no language model
anywhere: about 75 cases); ``RECFEAT_ATTACK_FULL=1`` also runs the extract/export cases,
which need a model per process and take several minutes on two cores
(``python benchmarks/attack/run_attack.py --label after`` runs the same table and writes
the counts).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.attack.cases import is_fast  # noqa: E402
from benchmarks.attack.run_attack import Target, run_all  # noqa: E402
from benchmarks.attack.table import CASES, CLASSES  # noqa: E402

FULL = os.environ.get("RECFEAT_ATTACK_FULL") == "1"


def _param(case):
    marks = [] if is_fast(case) else [pytest.mark.slow]
    if not is_fast(case) and not FULL:
        marks.append(pytest.mark.skip(reason="needs a language model; set RECFEAT_ATTACK_FULL=1"))
    return pytest.param(case, id=case.name, marks=marks)


@pytest.fixture(scope="module")
def records(request, data_dir):
    """Run every selected case of this module once, in parallel; name -> record."""
    wanted = {
        item.callspec.params["case"].name
        for item in request.session.items
        if item.module is request.module and hasattr(item, "callspec")
        and (FULL or is_fast(item.callspec.params["case"]))
    }  # fmt: skip
    cases = [c for c in CASES if c.name in wanted]
    recs, _ = run_all(Target(sys.executable), cases, workers=2, say=lambda msg: None)
    return {r["name"]: r for r in recs}


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_attack_case(case, records):
    rec = records[case.name]
    if "skipped" in rec:
        pytest.skip(rec["skipped"])
    problems = rec["problems"]
    assert not problems, (
        f"{case.name} (class {case.cls}: {CLASSES[case.cls]}): recfeat {' '.join(case.argv)}\n"
        f"exit {rec['exit']} (expected {rec['expected_exit']}); problems: {problems}\n"
        f"output:\n{rec['output']}"
    )


def test_table_spans_every_class_of_the_issue():
    assert {c.cls for c in CASES} == set(CLASSES)
    # the second round has a section of each of its classes, with each kind of case in it
    assert {c.mode for c in CASES if c.cls >= 10} >= {"run", "python", "http"}
    assert len(CASES) >= 80
    assert sum(is_fast(c) for c in CASES) >= 60
