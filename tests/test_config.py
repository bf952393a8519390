"""TOML pipeline configuration and ``recfeat config validate``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REPO

from recfeat.cli.main import cli
from recfeat.components import Cleaner, Encoder
from recfeat.config import (
    SCHEMA,
    create_component,
    load_config,
    read_config,
    validate_config,
)
from recfeat.errors import ConfigError
from recfeat.plugin.hookspecs import hookimpl
from recfeat.plugin.registry import get_registry


class Cap(Cleaner):
    """Cap the text length."""

    name = "test-cap"

    def __init__(self, max_chars: int = 100):
        self.max_chars = max_chars

    def clean_text(self, text):
        return text[: self.max_chars]


class Vec(Encoder):
    """A test encoder with a required option."""

    name = "test-vec"

    def __init__(self, dim_out: int, pooling: str = "mean"):
        self.dim_out = dim_out
        self.pooling = pooling


class ConfigTestPlugin:
    @hookimpl
    def register_cleaners(self, register):
        register(Cap)

    @hookimpl
    def register_encoders(self, register):
        register(Vec)


@pytest.fixture()
def components(add_plugin):
    assert add_plugin(ConfigTestPlugin(), "test-config-components")


def write(tmp_path: Path, text: str | bytes, name: str = "pipeline.toml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


VALID = """
cleaners = ["test-cap", { use = "test-cap", max_chars = "20" }]

[pipeline]
level = "item"

[encoder]
use = "test-vec"
dim_out = 8
"""


def test_valid_config_has_no_problems_and_builds_components(components, tmp_path):
    config = load_config(write(tmp_path, VALID))
    assert validate_config(config) == []
    cap = create_component("cleaner", config["cleaners"][1])
    assert isinstance(cap, Cap) and cap.max_chars == 20
    assert create_component("cleaner", "test-cap").max_chars == 100
    assert create_component("encoder", config["encoder"]).dim_out == 8


def test_every_problem_is_reported_once_on_its_own_line(components, tmp_path):
    text = """
cleaners = ["test-cpa", { use = "test-cap", max_chars = "lots", colour = 1 }, { max_chars = 3 }, 7]

[encoder]
use = "test-vec"
pooling = 3

[modles]
use = "x"

[[models]]
use = ""
"""
    problems = validate_config(read_config(write(tmp_path, text)), "p.toml")
    assert problems == [
        "p.toml: cleaners[0]: unknown cleaner 'test-cpa'. Did you mean 'test-cap'? Known cleaners: "
        + ", ".join(get_registry("cleaner").names()),
        "p.toml: cleaners[1]: unknown option 'colour' for cleaner 'test-cap'. Valid options: max_chars",
        "p.toml: cleaners[1]: cleaner 'test-cap': option 'max_chars': Input should be a valid "
        "integer, unable to parse string as an integer (got 'lots'; expected int)",
        'p.toml: cleaners[2]: missing use = "name" (the cleaner); list them with `recfeat components cleaners`',
        'p.toml: cleaners[3]: expected a table like { use = "name" }, got int',
        "p.toml: encoder: encoder 'test-vec': missing required option 'dim_out'",
        "p.toml: encoder: encoder 'test-vec': option 'pooling': Input should be a valid string "
        "(got 3; expected str)",
        "p.toml: unknown section 'modles'. Did you mean 'models'? Sections: "
        + ", ".join(SCHEMA),
        "p.toml: models[0]: use must be a model name (a string), got ''",
    ]


def test_list_and_single_sections_are_checked(components, tmp_path):
    text = """
[cleaners]
use = "test-cap"

[[encoder]]
use = "test-vec"
dim_out = 1
"""
    problems = validate_config(read_config(write(tmp_path, text)), "p.toml")
    assert len(problems) == 2
    assert problems[0].startswith("p.toml: cleaners must be a list of components: write [[cleaners]]")
    assert problems[1].startswith("p.toml: encoder takes one component, got a list")


def test_key_after_a_table_header_gets_a_hint(components, tmp_path):
    text = '[encoder]\nuse = "test-vec"\ndim_out = 4\ncleaners = ["test-cap"]\n'
    (problem,) = validate_config(read_config(write(tmp_path, text)), "p.toml")
    assert "'cleaners' is inside this table" in problem
    assert "above the first [table] header" in problem


def test_malformed_toml_names_line_and_column(tmp_path):
    path = write(tmp_path, '[encoder]\nuse = "x"\npooling = \n')
    with pytest.raises(ConfigError) as info:
        read_config(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: malformed TOML:") and "line 3" in msg
    assert "\n" not in msg


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda p: p / "missing.toml", "does not exist"),
        (lambda p: p, "is a folder"),
        (lambda p: write(p, b"use = '\xff\xfe'"), "not UTF-8"),
    ],
)
def test_unreadable_files_give_one_line(tmp_path, make, expected):
    with pytest.raises(ConfigError, match=expected) as info:
        read_config(make(tmp_path))
    assert "\n" not in str(info.value)
    assert info.value.exit_code == 2


def test_example_pipeline_is_valid():
    problems = validate_config(read_config(REPO / "examples" / "pipeline.toml"), "pipeline.toml")
    assert problems == []


# -- the command -----------------------------------------------------------------------------


def test_validate_command_ok_and_exit_codes(components, tmp_path):
    runner = CliRunner()
    ok = runner.invoke(cli, ["config", "validate", str(write(tmp_path, VALID))])
    assert ok.exit_code == 0 and ok.stdout.strip().endswith(": OK")

    bad = write(tmp_path, 'cleaners = ["test-cpa", "nope-nope-nope"]\n', "bad.toml")
    res = runner.invoke(cli, ["config", "validate", str(bad)])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 3
    assert "Did you mean 'test-cap'?" in lines[0]
    assert "unknown cleaner 'nope-nope-nope'" in lines[1]
    assert lines[2] == f"Error: {bad}: 2 problems (listed above)"

    missing = runner.invoke(cli, ["config", "validate", str(tmp_path / "no.toml")])
    assert missing.exit_code == 2
    assert missing.stderr.strip() == f"Error: config file {tmp_path / 'no.toml'} does not exist; check the path"

    usage = runner.invoke(cli, ["config", "validate"])
    assert usage.exit_code == 2 and "Missing argument" in usage.stderr


def test_validate_command_shows_no_traceback_unless_debug(tmp_path):
    path = write(tmp_path, "[encoder\n")
    base = [sys.executable, "-c", "import sys; from recfeat.cli.main import cli; cli(sys.argv[1:])"]
    plain = subprocess.run([*base, "config", "validate", str(path)], capture_output=True, text=True)
    assert plain.returncode == 2
    assert plain.stderr.startswith("Error: ") and "line 1" in plain.stderr
    assert "Traceback" not in plain.stderr and len(plain.stderr.strip().splitlines()) == 1
    debug = subprocess.run([*base, "--debug", "config", "validate", str(path)], capture_output=True, text=True)
    assert debug.returncode == 1  # an uncaught exception: Python's own exit code
    assert "Traceback" in debug.stderr and "ConfigError" in debug.stderr
