"""``recfeat.extract_file`` is ``recfeat extract``: the same settings resolver (config file
included), the same engine choice, the same output guard, the same bytes."""

from __future__ import annotations

import gzip
import hashlib
import itertools

import pytest
from click.testing import CliRunner

import recfeat
from recfeat.cli.main import cli
from recfeat.errors import UsageError


@pytest.fixture(scope="module")
def small(musical_instruments, tmp_path_factory):
    path = tmp_path_factory.mktemp("api") / "mi.json.gz"
    with gzip.open(musical_instruments, "rt") as src, gzip.open(path, "wt") as dst:
        dst.writelines(itertools.islice(src, 150))
    return path


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_api_refuses_to_overwrite_its_input(small, tmp_path):
    import pandas as pd

    copy = tmp_path / "x.parquet"  # an input that is also a valid --out name
    pd.DataFrame({"user": ["u"], "item": ["i"], "rating": [4.0], "text": ["fine"]}).to_parquet(copy)
    before = _sha(copy)
    with pytest.raises(UsageError, match="same file as DATA"):
        recfeat.extract_file(copy, copy, "review", "minilm")
    with pytest.raises(UsageError, match="inside the input folder DATA"):
        recfeat.extract_file(tmp_path, tmp_path / "inside.parquet", "review", "minilm")
    assert _sha(copy) == before


@pytest.mark.parametrize("bad", [{"levle": "item"}, {"ray": "yes please"}])
def test_unknown_or_malformed_options_are_one_usage_error(small, tmp_path, bad):
    with pytest.raises(UsageError):
        recfeat.extract_file(small, tmp_path / "o.parquet", "review", "minilm", **bad)


def test_a_path_is_required(tmp_path):
    import pandas as pd

    with pytest.raises(UsageError, match="path"):
        recfeat.extract_file(pd.DataFrame({"a": [1]}), tmp_path / "o.parquet")
    with pytest.raises(UsageError, match="missing DATA"):
        recfeat.extract_file(None, tmp_path / "o.parquet")


def test_config_file_and_flags_resolve_the_same_in_the_api_and_the_cli(small, tmp_path):
    """A config sets the level and cleaners; a keyword (flag) overrides max_length. The API
    and the CLI write byte-identical manifests."""
    config = tmp_path / "run.toml"
    config.write_text('cleaners = ["html"]\n[encoder]\nuse = "minilm"\nmax_length = 48\n'
                      '[pipeline]\nlevel = "item"\n')  # fmt: skip
    api_out, cli_out = tmp_path / "api.parquet", tmp_path / "cli.parquet"
    result = recfeat.extract_file(small, api_out, config=config, max_length=32, cache=False)
    assert result.manifest["level"] == "item" and result.manifest["max_length"] == 32
    assert [c["use"] for c in result.manifest["cleaners"]] == ["html"]
    run = CliRunner().invoke(cli, ["extract", str(small), "--config", str(config),
                                   "--max-length", "32", "--no-cache", "--out", str(cli_out)])  # fmt: skip
    assert run.exit_code == 0, run.output
    api_manifest = api_out.with_name("api.manifest.json").read_bytes()
    assert api_manifest == cli_out.with_name("cli.manifest.json").read_bytes()
