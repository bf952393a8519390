"""The core CLI: --version, plugins, components, error handling and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from recfeat import __version__
from recfeat.cli.components_cmd import ITEM_KEYS
from recfeat.cli.main import cli
from recfeat.cli.plugins_cmd import ROW_KEYS
from recfeat.components import Cleaner, Metric
from recfeat.errors import DataError, OptionError
from recfeat.plugin.hookspecs import hookimpl
from recfeat.plugin.registry import KINDS


class Rot13(Cleaner):
    """Rotate letters by 13 places.

    More text that must not appear.
    """

    name = "test-rot13"
    aliases = ("test-rot",)

    def __init__(self, times: int = 1, label: str | None = None):
        self.times = times
        self.label = label


class Perfect(Metric):
    """Always 1."""

    name = "test-perfect"


class CliTestPlugin:
    @hookimpl
    def register_cleaners(self, register):
        register(Rot13)

    @hookimpl
    def register_metrics(self, register):
        register(Perfect)


@pytest.fixture()
def plugin(add_plugin):
    assert add_plugin(CliTestPlugin(), "test-cli-plugin")
    return "test-cli-plugin"


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"recfeat, version {__version__}"


def test_help_lists_the_core_commands():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("plugins", "components", "config"):
        assert f"  {command} " in result.stdout


# -- recfeat plugins ---------------------------------------------------------------------------


def test_plugins_json_schema_and_throwaway_plugin(plugin):
    result = invoke("plugins", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert all(tuple(row) == ROW_KEYS for row in rows)
    assert all(not row["builtin"] for row in rows)  # built-ins only with --all
    (row,) = [r for r in rows if r["name"] == plugin]
    assert row == {
        "name": plugin,
        "distribution": None,
        "version": None,
        "builtin": False,
        "hooks": ["register_cleaners", "register_metrics"],
        "components": {"cleaner": ["test-rot13"], "metric": ["test-perfect"]},
        "error": None,
    }


def test_plugins_all_includes_builtins(plugin, fresh_plugins):
    rows = json.loads(invoke("plugins", "--all", "--json").stdout)
    builtins = [r for r in rows if r["builtin"]]
    assert {r["name"] for r in builtins} == set(fresh_plugins.DEFAULT_PLUGINS)
    for row in builtins:
        assert row["distribution"] == "recfeat"
        assert tuple(row) == ROW_KEYS
        if row["error"] is None:
            assert row["version"] == __version__ and row["hooks"]
    cleaners = next(r for r in builtins if r["name"] == "recfeat.plugins.cleaners")
    if cleaners["error"] is None:
        assert "html" in cleaners["components"]["cleaner"]


def test_plugins_text_output(plugin):
    result = invoke("plugins")
    assert result.exit_code == 0
    assert "test-cli-plugin" in result.stdout
    assert "  hooks: register_cleaners, register_metrics" in result.stdout
    assert "  cleaners: test-rot13" in result.stdout


def test_plugins_shows_a_broken_plugin(add_plugin, fresh_plugins):
    class Typo:
        @hookimpl
        def register_cleanrs(self, register):
            pass

    assert not add_plugin(Typo(), "test-typo-plugin")
    rows = json.loads(invoke("plugins", "--json").stdout)
    (row,) = [r for r in rows if r["name"] == "test-typo-plugin"]
    assert "register_cleanrs" in row["error"] and row["hooks"] == []
    text = invoke("plugins").stdout
    assert "test-typo-plugin" in text and "BROKEN: " in text


# -- recfeat components ------------------------------------------------------------------------


def test_components_json_schema_and_content(plugin):
    result = invoke("components", "--json")
    assert result.exit_code == 0
    items = json.loads(result.stdout)
    assert all(tuple(item) == ITEM_KEYS for item in items)
    assert {item["kind"] for item in items} <= set(KINDS)
    (rot,) = [i for i in items if i["name"] == "test-rot13"]
    assert rot == {
        "kind": "cleaner",
        "name": "test-rot13",
        "aliases": ["test-rot"],
        "plugin": plugin,
        "class": f"{__name__}.Rot13",
        "doc": "Rotate letters by 13 places.",
        "options": {
            "times": {"default": 1, "required": False, "type": "int"},
            "label": {"default": None, "required": False, "type": "str | None"},
        },
    }


@pytest.mark.parametrize("spelling", ["cleaners", "cleaner", "Cleaners"])
def test_components_of_one_kind(plugin, spelling):
    items = json.loads(invoke("components", spelling, "--json").stdout)
    assert {i["kind"] for i in items} == {"cleaner"}
    assert "test-rot13" in {i["name"] for i in items}
    assert "test-perfect" not in {i["name"] for i in items}


def test_components_builtin_cleaners_are_listed(fresh_plugins):
    pytest.importorskip("recfeat.plugins.cleaners")
    items = json.loads(invoke("components", "cleaners", "--json").stdout)
    html = next(i for i in items if i["name"] == "html")
    assert html["plugin"] == "recfeat.plugins.cleaners" and html["doc"]


def test_components_text_output(plugin):
    result = invoke("components", "cleaners")
    assert result.exit_code == 0
    assert result.stdout.startswith("cleaners:\n")
    assert "  test-rot13 (aliases: test-rot) [test-cli-plugin]: Rotate letters by 13 places." in result.stdout
    assert "      options: times=1, label=None" in result.stdout
    assert "More text" not in result.stdout


def test_components_unknown_kind_is_a_usage_error():
    result = invoke("components", "encodrs")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"Error: unknown component kind 'encodrs'. Did you mean 'encoder'? Kinds: {', '.join(KINDS)}"
    ]
    assert result.stdout == ""


# -- error handling ----------------------------------------------------------------------------


@pytest.fixture()
def failing_command():
    """A temporary command raising whatever exception the test passes with --kind."""
    errors = {
        "option": OptionError("bad option 'x'; valid options: y"),
        "data": DataError("reviews.json line 3: not JSON; fix the line or pass --skip-bad-rows"),
        "bug": KeyError("oops"),
        "memory": MemoryError(),
        "full": OSError(28, "No space left on device", "/tmp/out/.recfeat-tmp.12.host-ab12cd34.res.json"),
        "denied": PermissionError(13, "Permission denied", "/root/x.parquet"),
        "folder": IsADirectoryError(21, "Is a directory", "results"),
        "escape": DataError("bad id '\x1b]0;pwned\x07' in line 2"),
    }

    @click.command("test-fail")
    @click.argument("kind")
    def fail(kind):
        raise errors[kind]

    cli.add_command(fail)
    yield
    cli.commands.pop("test-fail")


@pytest.mark.parametrize(
    "kind, code, message",
    [
        ("option", 2, "Error: bad option 'x'; valid options: y"),
        ("data", 1, "Error: reviews.json line 3: not JSON; fix the line or pass --skip-bad-rows"),
        ("bug", 1, "Error: internal error KeyError: 'oops'; this is a bug in recfeat or a plugin: "
                   "rerun with --debug and report the traceback"),
        ("full", 1, "Error: disk full writing /tmp/out/res.json; free space or choose another --out"),
        ("denied", 1, "Error: permission denied: /root/x.parquet; choose a file and folder you may read and write"),
        ("folder", 1, "Error: results is a folder; give a file path"),
        ("escape", 1, "Error: bad id '\\x1b]0;pwned\\x07' in line 2"),
        ("memory", 1, "Error: out of memory; lower --batch-tokens or the batch size, or process the input in parts"),
    ],
)
def test_errors_are_one_line_with_their_exit_code(failing_command, kind, code, message):
    result = invoke("test-fail", kind)
    assert result.exit_code == code
    assert result.stderr.strip() == message


def test_debug_reraises_with_the_traceback(failing_command):
    result = invoke("--debug", "test-fail", "data")
    assert isinstance(result.exception, DataError)


def test_click_usage_errors_exit_2():
    result = invoke("components", "--no-such-flag")
    assert result.exit_code == 2
    assert "No such option" in result.stderr


def test_json_goes_to_stdout_only_in_a_real_process():
    code = "import sys; from recfeat.cli.main import cli; cli(sys.argv[1:])"
    out = subprocess.run(
        [sys.executable, "-c", code, "components", "cleaners", "--json"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0
    items = json.loads(out.stdout)
    assert isinstance(items, list)


def test_a_closed_pipe_ends_quietly():
    """`recfeat components | head -1`: the reader is gone before the output is written."""
    code = "import sys; from recfeat.cli.main import cli; cli(sys.argv[1:])"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "components"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    proc.stdout.close()  # like `head` exiting: every write now fails with EPIPE
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert err.decode() == ""


def test_click_errors_quoting_user_input_are_cleaned():
    result = invoke("no-such-\x1b[2Jcommand")
    assert result.exit_code == 2
    assert "\x1b" not in result.output and "\\x1b[2J" in result.output


# -- one name per thing ------------------------------------------------------------------------


def _commands(group: click.Group, prefix: str = ""):
    """(path, command) for every command under ``group``, subcommands included."""
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            yield from _commands(command, f"{prefix}{name} ")
        elif command is not None:
            yield f"{prefix}{name}", command


def _flags(command: click.Command) -> set[str]:
    return {opt for p in command.params if isinstance(p, click.Option) for opt in p.opts}


def test_encoder_is_the_text_encoder_and_model_the_recommendation_model_everywhere():
    commands = dict(_commands(cli))
    with_model = {path for path, command in commands.items() if "--model" in _flags(command)}
    assert with_model == {"train", "serve"}  # both: a recommendation model
    with_encoder = {path for path, command in commands.items() if "--encoder" in _flags(command)}
    assert {"extract", "export", "serve", "tokenize", "bench throughput",
            "bench accuracy"} <= with_encoder  # fmt: skip
    for path, command in commands.items():
        flags = _flags(command)
        assert not flags & {"--recommender", "--onnx"}, path
        if path == "export":
            assert "--format" not in flags and "--backend" in flags


@pytest.mark.parametrize(
    "args",
    [
        ("serve", "--recommender", "m.recfeat"),
        ("export", "--format", "openvino", "--out", "x"),
        ("export", "--model", "org/name", "--out", "x"),
        ("extract", "data.csv", "--onnx", "folder", "--out", "o.parquet"),
        ("tokenize", "--model", "org/name"),
    ],
)
def test_removed_spellings_are_one_line_usage_errors(args):
    flag = next(a for a in args if a.startswith("--"))
    result = invoke(*args)
    assert result.exit_code == 2
    (error,) = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert "No such option" in error and flag in error, result.output
