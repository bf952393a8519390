"""One TOML file holds a whole experiment (``recfeat evaluate --config exp.toml``): data,
split, models with fixed options and search spaces, peers, tuning and outputs; the examples
in examples/experiments/ run end to end on the shared data with nothing but ``--config``."""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import REPO, assert_one_line_error
from test_models import synthetic  # tests/ is on sys.path (pytest rootdir import mode)

import recfeat
from recfeat.cli.main import cli
from recfeat.components import Encoder
from recfeat.config import PEER_LIBRARIES
from recfeat.plugin.hookspecs import hookimpl

EXAMPLES = sorted((REPO / "examples" / "experiments").glob("*.toml"))
#: example -> the models its table must show (row labels)
EXPECTED_MODELS = {
    "amazon-appliances": {"global-mean", "bias(reg_user=5.0, reg_item=5.0)", "popularity"},
    "amazon-musical-instruments": {"popularity", "bias", "ease"},
    "movielens-100k": {"popularity", "ease(reg=300.0)", "content(weighting=mean)"},
    "movielens-latest-small": {"popularity", "item-knn-last(mode=transition, last=3)",
                               "implicit-bpr(iterations=20)", "implicit-als"},
}  # fmt: skip


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture()
def in_tmp(tmp_path, monkeypatch):
    """Relative outputs land in tmp_path; the vector cache too."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RECFEAT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


@pytest.fixture(scope="module")
def ratings(tmp_path_factory) -> Path:
    """A small CSV of ratings with review texts (two user groups that prefer their items)."""
    inter, _, _, _ = synthetic(n_users=60, n_items=40)
    inter = inter.assign(text=[f"about {i}, a group {int(i[1:]) % 2} thing, said {u}"
                               for u, i in zip(inter["user"], inter["item"], strict=True)])  # fmt: skip
    path = tmp_path_factory.mktemp("exp") / "ratings.csv"
    inter.to_csv(path, index=False)
    return path


def experiment(tmp_path: Path, text: str, name: str = "exp.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def base(ratings: Path, body: str = "") -> str:
    return (f'[data]\npath = "{ratings.as_posix()}"\n\n[dataset]\nuse = "csv"\n\n'
            f'[pipeline]\nsplit = "random"\nseed = 0\nk = 5\n\n'
            f'[[metrics]]\nuse = "ndcg@k"\n\n{body}')  # fmt: skip


# -- the examples ----------------------------------------------------------------------------


def test_there_is_one_example_per_shared_dataset():
    assert {p.stem for p in EXAMPLES} == set(EXPECTED_MODELS)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_config_validate_accepts_every_example(path):
    result = run("config", "validate", path)
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith(": OK")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_each_example_runs_with_only_config(path, data_dir, in_tmp, monkeypatch):
    monkeypatch.setenv("RECFEAT_DATA_DIR", str(data_dir))
    result = run("evaluate", "--config", path)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    for model in EXPECTED_MODELS[path.stem]:
        assert model in result.output, (model, result.output)
    outputs = tomllib.loads(path.read_text())["outputs"]
    folder = Path(outputs.get("dir", "."))
    names = {k: v for k, v in outputs.items() if k != "dir"}
    if "dir" in outputs:  # dir alone writes the results under their default names
        names = {"json": "results.json", "markdown": "results.md", "plot": "results.png", **names}
    for kind, name in names.items():
        written = in_tmp / folder / name
        assert written.is_file() and written.stat().st_size > 0, (kind, written)
    if "json" in names:
        record = json.loads((in_tmp / folder / names["json"]).read_text())
        assert set(record["models"]) == EXPECTED_MODELS[path.stem]
    if "markdown" in names:
        report = (in_tmp / folder / names["markdown"]).read_text()
        assert report.startswith("# ") and "| model |" in report
    if path.stem == "movielens-100k":  # ease's reg fixed, its dropout searched: recorded
        ease = record["tuning"]["models"]["ease(reg=300.0)"]
        assert ease["fixed"] == {"reg": 300.0}
        assert ease["space"] == {"dropout": [0.0, 0.25]} and ease["space_source"] == "given"
        assert {trial["options"]["reg"] for trial in ease["trials"]} == {300.0}
        assert "held fixed: reg=300.0" in report
        assert record["features"]["extracted"]["encoder"] == "minilm"


def test_peer_libraries_are_the_plugins_ones():
    from recfeat.plugins.peers import LIBRARIES

    assert PEER_LIBRARIES == tuple(LIBRARIES)


# -- unknown keys and bad values: one line, exit 2, a suggestion -----------------------------


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("[tuning]\ntune = true\ntrails = 3\n", ("unknown setting 'trails'", "Did you mean 'trials'?")),
        ("[tunning]\ntune = true\n", ("unknown section 'tunning'", "Did you mean 'tuning'?")),
        ("[pipeline]\ntune = true\n", ("'tune' is a setting of [tuning]",)),
        ("[outputs]\nmarkdwn = 'r.md'\n", ("unknown setting 'markdwn'", "Did you mean 'markdown'?")),
        ("[models.ease]\nreg = 5.0\n[models.ease.search]\nreg = [1.0, 10.0]\n",
         ("'reg' is both fixed (reg = 5.0) and searched",)),
        ("[models.ease.search]\nregg = [1.0, 10.0]\n", ("search.regg", "unknown option 'regg'")),
        ("[models.ease.search]\nreg = 100.0\n", ("search.reg must be a non-empty list",)),
        ("[models.ease.search]\nreg = [100.0, 'big']\n", ("search.reg", "option 'reg'", "'big'")),
        ("[tuning]\ntune = true\nobjective = 'ndgc@k'\n", ("objective 'ndgc@k'", "Did you mean 'ndcg@k'?")),
        ("[data]\npath = '${RECFEAT_NOT_SET_ANYWHERE}/x'\n", ("RECFEAT_NOT_SET_ANYWHERE} is not set",)),
        ("peers = ['implict']\n", ("'implict' is not one of implicit", "Did you mean 'implicit'?")),
        ("[[models]]\nuse = 'ease'\npeers = ['implicit']\n", ("move `peers = ...` above",)),
    ],
    ids=["setting", "section", "wrong-table", "outputs", "fixed-and-searched", "search-option",
         "search-not-a-list", "search-value", "objective", "unset-variable", "peer", "misplaced"],
)  # fmt: skip
def test_a_bad_experiment_is_one_line_exit_2(tmp_path, monkeypatch, text, fragments):
    monkeypatch.delenv("RECFEAT_NOT_SET_ANYWHERE", raising=False)
    path = experiment(tmp_path, text)
    assert_one_line_error(run("evaluate", "--config", path), 2, *fragments)
    if "RECFEAT_NOT_SET" not in text:  # validate reads the file; expanding paths is the run's
        checked = run("config", "validate", path)
        assert checked.exit_code == 2 and all(f in checked.output for f in fragments), checked.output


# -- fixed options, search spaces, overrides ------------------------------------------------


def test_a_fixed_option_is_not_searched_and_is_reported_as_fixed(ratings, tmp_path):
    text = base(ratings, "[models.ease]\nreg = 500.0\n\n[tuning]\ntune = true\ntrials = 4\n")
    result = recfeat.evaluate(config=experiment(tmp_path, text))
    report = result.info["tuning"]["models"]["ease(reg=500.0)"]
    assert report["fixed"] == {"reg": 500.0}
    assert "reg" not in report["space"] and report["space"] == {"dropout": [0.0, 0.25]}
    assert report["space_source"] == "built-in"
    assert {t["options"]["reg"] for t in report["trials"]} == {500.0}
    assert {t["options"]["dropout"] for t in report["trials"]} == {0.0, 0.25}
    (note,) = result.notes["ease(reg=500.0)"]
    assert "searched dropout=" in note and "held fixed: reg=500.0" in note


def test_a_search_table_replaces_the_built_in_space(ratings, tmp_path):
    text = base(ratings, "[models.ease.search]\nreg = [10.0, 1000.0]\n\n"
                         "[tuning]\ntune = true\ntrials = 5\n")  # fmt: skip
    result = recfeat.evaluate(config=experiment(tmp_path, text))
    report = result.info["tuning"]["models"]["ease"]
    assert report["space"] == {"reg": [10.0, 1000.0]} and report["space_source"] == "given"
    tried = [t["options"] for t in report["trials"]]
    assert {o["reg"] for o in tried} == {100.0, 10.0, 1000.0}  # as given (default) first
    assert {o["dropout"] for o in tried} == {0.0}  # not in the given space: never searched
    assert report["fixed"] == {}


def test_a_search_space_with_tuning_off_is_said_not_searched(ratings, tmp_path):
    text = base(ratings, "[models.ease.search]\nreg = [10.0, 1000.0]\n")
    result = recfeat.evaluate(config=experiment(tmp_path, text))
    assert "tuning" not in result.info
    (note,) = result.notes["ease"]
    assert "not searched: tuning is off" in note


def test_command_line_flags_override_the_file(ratings, in_tmp):
    text = base(ratings, "[models.ease]\n[models.ease.search]\nreg = [10.0, 1000.0]\n"
                         "dropout = [0.0, 0.25]\n\n[tuning]\ntune = true\ntrials = 3\n\n"
                         "[outputs]\njson = 'from-file.json'\n")  # fmt: skip
    path = experiment(in_tmp, text)
    plain = run("evaluate", "--config", path)
    assert plain.exit_code == 0, plain.output
    record = json.loads((in_tmp / "from-file.json").read_text())
    assert record["seed"] == 0 and "tuning" in record
    flagged = run("evaluate", "--config", path, "--seed", "3", "-O", "ease.reg=50",
                  "--out", "from-flag.json")  # fmt: skip
    assert flagged.exit_code == 0, flagged.output
    record = json.loads((in_tmp / "from-flag.json").read_text())
    assert record["seed"] == 3
    ease = record["tuning"]["models"]["ease(reg=50)"]
    assert ease["fixed"] == {"reg": 50} and ease["space"] == {"dropout": [0.0, 0.25]}
    untuned = run("evaluate", "--config", path, "--no-tune", "--out", "untuned.json")
    assert untuned.exit_code == 0, untuned.output
    assert "tuning" not in json.loads((in_tmp / "untuned.json").read_text())


def test_the_python_twin_runs_the_file_as_the_command_does(ratings, in_tmp):
    text = base(ratings, "[models.popularity]\n[models.ease]\nreg = 50.0\n")
    path = experiment(in_tmp, text)
    cli_result = run("evaluate", "--config", path, "--json")
    assert cli_result.exit_code == 0, cli_result.output
    from_cli = json.loads(cli_result.output)
    from_api = recfeat.evaluate(config=str(path))
    assert from_api.table["ndcg@5"].round(10).to_dict() == {
        m: round(v["metrics"]["ndcg@5"], 10) for m, v in from_cli["models"].items()
    }  # fmt: skip


def test_data_may_come_from_the_file_alone_or_the_command_line(ratings, tmp_path):
    without = experiment(tmp_path, '[dataset]\nuse = "csv"\n[models.popularity]\n', "nodata.toml")
    assert_one_line_error(run("evaluate", "--config", without), 2, "path = ... under [data]")
    given = run("evaluate", ratings, "--config", without, "--json")
    assert given.exit_code == 0, given.output


# -- features: a file, or extracted with a named encoder ------------------------------------


class _HashEncoder(Encoder):
    """dim-8 vectors from the sha256 of each text: fast, deterministic, no model files."""

    name = "test-experiment-hash"
    backend = "test"

    def __init__(self, normalize: bool = True):
        self.normalize = normalize
        self.last_stats: dict = {}

    @property
    def dim(self) -> int:
        return 8

    def fingerprint(self) -> dict:
        return {"encoder": self.name, "normalize": self.normalize}

    def encode(self, texts, progress=False):
        self.last_stats = {"n_kept": [len(t.split()) for t in texts], "n_dropped": [0] * len(texts)}
        raw = [np.frombuffer(hashlib.sha256(t.encode()).digest()[:8], dtype=np.uint8) for t in texts]
        out = np.asarray(raw, dtype=np.float32).reshape(len(texts), 8) - 127.5
        return out / np.linalg.norm(out, axis=1, keepdims=True)


class _EncoderPlugin:
    @hookimpl
    def register_encoders(self, register):
        register(_HashEncoder)


def test_extract_features_uses_the_files_encoder_and_level(ratings, in_tmp, add_plugin):
    assert add_plugin(_EncoderPlugin(), "test-experiment-encoder")
    text = base(ratings, "[models.popularity]\n[models.content]\n").replace(
        "[data]\n", "[data]\nextract_features = true\n", 1
    ) + '\n[encoder]\nuse = "test-experiment-hash"\n'
    path = experiment(in_tmp, text.replace("[pipeline]\n", '[pipeline]\nlevel = "review"\n', 1))
    result = run("evaluate", "--config", path, "--out", "r.json")
    assert result.exit_code == 0, result.output
    record = json.loads((in_tmp / "r.json").read_text())
    assert record["features"]["extracted"]["encoder"] == "test-experiment-hash"
    assert record["features"]["item_features"].startswith("review-level")
    assert record["models"]["content"]["metrics"]["ndcg@5"] is not None


def test_a_features_file_named_in_the_experiment_is_used(ratings, in_tmp, add_plugin):
    assert add_plugin(_EncoderPlugin(), "test-experiment-encoder")
    recfeat.extract_file(ratings, in_tmp / "reviews.parquet", level="review",
                         encoder="test-experiment-hash", format="csv")  # fmt: skip
    text = base(ratings, "[models.content]\n").replace(
        "[data]\n", '[data]\nfeatures = "reviews.parquet"\n', 1)  # relative: the current folder
    result = run("evaluate", "--config", experiment(in_tmp, text), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["features"]["item_features"].startswith("review-level")
    both = text.replace("[data]\n", "[data]\nextract_features = true\n", 1)
    assert_one_line_error(run("evaluate", "--config", experiment(in_tmp, both, "both.toml")), 2,
                          "both features (a file) and extract_features")  # fmt: skip
