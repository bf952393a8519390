"""Plugin loading: built-ins, entry points, RECFEAT_LOAD_PLUGINS, broken plugins, and a real
pip-installed example plugin."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import REPO, make_entry_point_dist

from recfeat.components import Cleaner
from recfeat.plugin.hookspecs import hookimpl
from recfeat.plugin.registry import get_registry

EXAMPLE = REPO / "examples" / "recfeat-example-plugin"


class Reverse(Cleaner):
    """Reverse the text."""

    name = "test-reverse"
    aliases = ("test-esrever",)

    def clean_text(self, text: str) -> str:
        return text[::-1]


class ReversePlugin:
    @hookimpl
    def register_cleaners(self, register):
        register(Reverse)


def run_cli(*args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess:
    """Run ``recfeat ARGS`` in a fresh interpreter (so plugin loading starts from scratch)."""
    full_env = os.environ.copy() if env is None else env
    return subprocess.run(
        _recfeat(*args),
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
        **kwargs,
    )


def _recfeat(*args: str) -> list[str]:
    # the interpreter of this venv, whatever the PATH says
    code = "import sys; from recfeat.cli.main import cli; sys.exit(cli(sys.argv[1:]))"
    return [sys.executable, "-c", code, *args]


def env_without_filter(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RECFEAT_LOAD_PLUGINS"}
    env.update(extra)
    return env


# -- built-ins ---------------------------------------------------------------------------------


def test_builtins_are_registered_like_plugins(fresh_plugins):
    info = fresh_plugins.plugin_info()
    failed = {f.name: f.error for f in fresh_plugins.failures()}
    for modname in fresh_plugins.DEFAULT_PLUGINS:
        if importlib.util.find_spec(modname.rsplit(".", 1)[0]) is None:
            continue
        if modname in failed:  # a built-in that failed is reported with its error, not lost
            assert failed[modname]
            continue
        assert info[modname].builtin is True
        assert info[modname].distribution == "recfeat"


def test_builtin_plugins_add_components_not_commands(fresh_plugins):
    # Built-in commands live in recfeat.cli (BUILTIN_COMMAND_MODULES); the CLI start-up loads
    # only third-party plugins for register_commands, so a built-in's would never be called.
    for name in fresh_plugins.plugin_info():
        if fresh_plugins.plugin_info()[name].builtin:
            assert "register_commands" not in fresh_plugins.hooks_of(name), name


def test_cli_startup_does_not_import_builtin_component_modules():
    code = (
        "import sys; import recfeat.cli.main; "
        "from recfeat.plugin import manager as pm; "
        "print([m for m in pm.DEFAULT_PLUGINS if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- throwaway plugins -------------------------------------------------------------------------


def test_throwaway_plugin_registers_and_unregisters(add_plugin, fresh_plugins):
    assert add_plugin(ReversePlugin(), "test-reverse-plugin")
    assert get_registry("cleaner").create("test-esrever").clean(["abc"]) == ["cba"]
    assert fresh_plugins.hooks_of("test-reverse-plugin") == ["register_cleaners"]
    fresh_plugins.remove_plugin("test-reverse-plugin")
    assert "test-reverse" not in get_registry("cleaner")


def test_misspelled_hook_is_a_loud_failure_of_that_plugin_only(add_plugin, fresh_plugins):
    class Typo:
        @hookimpl
        def register_cleaner(self, register):  # missing "s"
            register(Reverse)

    assert add_plugin(ReversePlugin(), "test-good")
    assert not add_plugin(Typo(), "test-typo")
    (failure,) = [f for f in fresh_plugins.failures() if f.name == "test-typo"]
    assert "register_cleaner" in failure.error and "unknown hook" in failure.error
    assert fresh_plugins.get_plugin_manager().get_plugin("test-typo") is None
    assert "test-reverse" in get_registry("cleaner")  # the good plugin is unaffected


def test_hook_with_wrong_argument_name_is_rejected(add_plugin, fresh_plugins):
    class BadArgs:
        @hookimpl
        def register_cleaners(self, registrar):
            pass

    assert not add_plugin(BadArgs(), "test-bad-args")
    (failure,) = [f for f in fresh_plugins.failures() if f.name == "test-bad-args"]
    assert "registrar" in failure.error


def test_plugin_raising_in_a_hook_is_recorded_and_rolled_back(add_plugin, fresh_plugins, capsys):
    class Half:
        @hookimpl
        def register_cleaners(self, register):
            register(Reverse, name="test-half-registered")
            raise RuntimeError("boom")

    assert add_plugin(Half(), "test-half")
    assert add_plugin(ReversePlugin(), "test-good")
    registry = get_registry("cleaner")
    assert "test-reverse" in registry  # the other plugin still registers
    assert "test-half-registered" not in registry  # no half-registered plugin
    (failure,) = [f for f in fresh_plugins.failures() if f.name == "test-half"]
    assert failure.error == "register_cleaners: RuntimeError: boom"
    assert "test-half" in capsys.readouterr().err


def test_duplicate_during_loading_fails_the_second_plugin(add_plugin, fresh_plugins):
    class Copycat(Cleaner):
        """Same name as Reverse."""

        name = "test-reverse"

    class Second:
        @hookimpl
        def register_cleaners(self, register):
            register(Copycat)

    assert add_plugin(ReversePlugin(), "test-first")
    assert add_plugin(Second(), "test-second")
    assert get_registry("cleaner").get("test-reverse") is Reverse
    (failure,) = [f for f in fresh_plugins.failures() if f.name == "test-second"]
    assert "'test-first'" in failure.error and "'test-second'" in failure.error

    from recfeat.cli.plugins_cmd import plugins_report

    rows = {row["name"]: row for row in plugins_report(include_builtin=False)}
    assert rows["test-first"]["error"] is None
    assert rows["test-first"]["components"] == {"cleaner": ["test-reverse"]}
    assert "registered twice" in rows["test-second"]["error"]
    assert rows["test-second"]["components"] == {}


def test_duplicate_of_a_builtin_keeps_the_builtin(add_plugin, fresh_plugins):
    pytest.importorskip("recfeat.plugins.cleaners")
    builtin = get_registry("cleaner").get("html")

    class FakeHtml(Cleaner):
        """Pretends to be html."""

        name = "html"

    class Usurper:
        @hookimpl
        def register_cleaners(self, register):
            register(FakeHtml)

    add_plugin(Usurper(), "test-usurper")
    assert get_registry("cleaner").get("html") is builtin
    (failure,) = [f for f in fresh_plugins.failures() if f.name == "test-usurper"]
    assert "'recfeat.plugins.cleaners'" in failure.error


# -- entry points ------------------------------------------------------------------------------

GOOD_PLUGIN = '''
from recfeat.components import Cleaner
from recfeat.plugin.hookspecs import hookimpl


class Exclaim(Cleaner):
    """Add an exclamation mark."""

    name = "test-exclaim"

    def clean_text(self, text):
        return text + "!"


@hookimpl
def register_cleaners(register):
    register(Exclaim)


@hookimpl
def register_commands(cli):
    @cli.command("test-hello")
    def hello():
        """Say hello."""
        print("hello from a plugin command")
'''


@pytest.fixture()
def fake_dists(tmp_path, monkeypatch):
    """Two installed distributions on sys.path: a good plugin and one whose entry point
    names a module that does not exist."""
    make_entry_point_dist(
        tmp_path, "test-good-dist", {"test_good": "test_good_plugin_mod"}, {"test_good_plugin_mod": GOOD_PLUGIN}
    )
    make_entry_point_dist(tmp_path, "test-broken-dist", {"test_broken": "no_such_module_xyz"})
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


@pytest.mark.parametrize(
    "allowed, expected",
    [
        (None, {"test_good"}),  # unset: every installed plugin
        ("", set()),  # set but empty: none
        ("test_good", {"test_good"}),  # by entry-point name
        ("test-good-dist", {"test_good"}),  # by distribution name
        ("Test_Good_Dist", {"test_good"}),  # normalised like pip does
        ("something-else", set()),
        (" test_good , test_broken ", {"test_good"}),  # spaces ignored; broken one fails
    ],
)
def test_load_plugins_env_limits_entry_points(fake_dists, fresh_plugins, monkeypatch, allowed, expected):
    if allowed is None:
        monkeypatch.delenv("RECFEAT_LOAD_PLUGINS", raising=False)
    else:
        monkeypatch.setenv("RECFEAT_LOAD_PLUGINS", allowed)
    fresh_plugins.reset()
    third_party = {n for n, i in fresh_plugins.plugin_info().items() if not i.builtin}
    assert third_party & {"test_good", "test_broken"} == expected
    assert ("test-exclaim" in get_registry("cleaner")) == ("test_good" in expected)


def test_broken_entry_point_is_reported_and_others_load(fake_dists, fresh_plugins, monkeypatch):
    monkeypatch.setenv("RECFEAT_LOAD_PLUGINS", "test_good,test_broken")
    fresh_plugins.reset()
    (failure,) = [f for f in fresh_plugins.failures() if f.name == "test_broken"]
    assert failure.distribution == "test-broken-dist"
    assert "no_such_module_xyz" in failure.error and "ModuleNotFoundError" in failure.error
    assert get_registry("cleaner").create("test-exclaim").clean_text("hi") == "hi!"


def test_cli_survives_a_broken_entry_point(fake_dists):
    env = env_without_filter(PYTHONPATH=str(fake_dists))
    listed = run_cli("plugins", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["test_broken"]["distribution"] == "test-broken-dist"
    assert "no_such_module_xyz" in rows["test_broken"]["error"]
    assert rows["test_good"]["error"] is None
    assert rows["test_good"]["version"] == "1.0"
    assert rows["test_good"]["components"] == {"cleaner": ["test-exclaim"]}
    # the good plugin's command works, and so do the built-in commands
    hello = run_cli("test-hello", env=env)
    assert hello.returncode == 0 and "hello from a plugin command" in hello.stdout
    comps = run_cli("components", "cleaners", "--json", env=env)
    assert comps.returncode == 0
    assert "test-exclaim" in {item["name"] for item in json.loads(comps.stdout)}


def test_plugin_command_that_raises_does_not_break_the_cli(tmp_path):
    source = "from recfeat.plugin.hookspecs import hookimpl\n\n@hookimpl\ndef register_commands(cli):\n    raise ValueError('no commands today')\n"
    make_entry_point_dist(tmp_path, "test-cmd-dist", {"test_cmd": "test_cmd_mod"}, {"test_cmd_mod": source})
    env = env_without_filter(PYTHONPATH=str(tmp_path))
    out = run_cli("plugins", "--json", env=env)
    assert out.returncode == 0
    assert "no commands today" in out.stderr
    (row,) = [r for r in json.loads(out.stdout) if r["name"] == "test_cmd"]
    assert row["error"] == "register_commands: ValueError: no commands today"


# -- the example package, installed with pip ---------------------------------------------------


@pytest.mark.slow
def test_example_plugin_installed_with_pip(tmp_path):
    # Build from a copy so the source tree stays free of build/ and *.egg-info.
    src = tmp_path / "recfeat-example-plugin"
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    pip = [sys.executable, "-m", "pip"]
    install = subprocess.run(
        [*pip, "install", "--no-deps", "--no-build-isolation", "--no-index", "-q", str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr
    try:
        for allowed in (None, "example"):  # unset, and limited to this plugin
            env = env_without_filter() if allowed is None else {**os.environ, "RECFEAT_LOAD_PLUGINS": allowed}
            out = run_cli("plugins", "--json", env=env)
            assert out.returncode == 0, out.stderr
            (row,) = [r for r in json.loads(out.stdout) if r["name"] == "example"]
            assert row["distribution"] == "recfeat-example-plugin"
            assert row["version"] == "0.1.0"
            assert row["builtin"] is False and row["error"] is None
            assert row["hooks"] == ["register_cleaners", "register_commands", "register_models"]
            assert row["components"] == {"cleaner": ["strip-prices"], "model": ["recent-popularity"]}

        # its cleaner works in a cleaner chain configured by name, like a built-in
        code = (
            "from recfeat.extraction.cleaning import build_cleaner_chain\n"
            "chain = build_cleaner_chain(['html', {'use': 'prices', 'replacement': '<p>'}, 'whitespace'])\n"
            "print(chain.clean(['<b>Was  $24.99</b>, now 19,99 € for 3 strings'])[0])\n"
        )
        chain = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env_without_filter(), timeout=120
        )
        assert chain.returncode == 0, chain.stderr
        assert chain.stdout.strip() == "Was <p>, now <p> for 3 strings"

        # its command is on the CLI
        cmd = run_cli("strip-prices", "only $5 for 2", env=env_without_filter())
        assert cmd.returncode == 0, cmd.stderr
        assert cmd.stdout.strip() == "only [PRICE] for 2"
    finally:
        subprocess.run([*pip, "uninstall", "-y", "-q", "recfeat-example-plugin"], capture_output=True)
    gone = run_cli("plugins", "--json", env=env_without_filter())
    assert "example" not in {r["name"] for r in json.loads(gone.stdout)}


# -- the example plugin's components, from source ----------------------------------------------


@pytest.fixture()
def example_module(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    yield importlib.import_module("recfeat_example_plugin")
    for name in [m for m in sys.modules if m.startswith("recfeat_example_plugin")]:
        del sys.modules[name]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("$19.99 well spent", "[PRICE] well spent"),
        ("costs £1,299.00 now", "costs [PRICE] now"),
        ("19,99 € im Angebot", "[PRICE] im Angebot"),
        ("paid 20 USD, or USD 20", "paid [PRICE], or [PRICE]"),
        ("5 bucks", "[PRICE]"),
        ("1.299,00 € teuer", "[PRICE] teuer"),
        ("$5 100 items", "[PRICE] 100 items"),
        ("3 strings, model 2024, 4.5 stars", "3 strings, model 2024, 4.5 stars"),
        ("这把吉他 ¥1200 很好", "这把吉他 [PRICE] 很好"),
    ],
)
def test_example_cleaner_masks_prices_only(example_module, text, expected):
    from recfeat_example_plugin.prices import StripPrices

    assert StripPrices().clean_text(text) == expected


def test_example_model_follows_the_recmodel_contract(example_module):
    import numpy as np
    import pandas as pd
    from recfeat_example_plugin.recency import RecentPopularity
    from sklearn.base import clone

    from recfeat.errors import NotFittedError

    day = 86400
    train = pd.DataFrame(
        {
            "user": ["u1", "u2", "u3", "u1", "u4"],
            "item": ["old", "old", "old", "new", "new"],
            "rating": [5, 4, 5, 3, 4],
            "timestamp": [0, 0, 0, 100 * day, 100 * day],
        }
    )
    model = RecentPopularity(half_life_days=10)
    with pytest.raises(NotFittedError):
        model.score_items(["u1"], ["old"])
    assert model.fit(train) is model
    scores = model.score_items(["u1", "stranger"], ["old", "new", "unseen"])
    assert scores.shape == (2, 3)
    assert scores[0, 1] > scores[0, 0]  # 2 recent interactions beat 3 old ones
    assert np.isnan(scores[:, 2]).all()  # no cold-start ability
    np.testing.assert_allclose(scores[0], scores[1])  # not personalised
    # with a very long half-life it is plain popularity again
    slow = clone(model).set_params(half_life_days=1e9).fit(train)
    assert slow.score_items(["u1"], ["old", "new"])[0, 0] > slow.score_items(["u1"], ["old", "new"])[0, 1]
    assert clone(model).get_params() == {"half_life_days": 10}


def test_example_hooks_register_through_recfeat(example_module, add_plugin, fresh_plugins):
    assert add_plugin(example_module, "example")
    model = get_registry("model").create("recency", half_life_days="7")
    assert model.half_life_days == 7.0
    assert get_registry("cleaner").entry("prices").plugin == "example"


def test_plugin_cannot_replace_an_existing_command(add_plugin, fresh_plugins, capsys):
    import click

    from recfeat.cli.main import RecfeatGroup, _register_plugin_commands

    class Hijack:
        @hookimpl
        def register_commands(self, cli):
            @cli.command("plugins")
            def fake():
                """Pretend to be `recfeat plugins`."""

            @cli.command("test-extra")
            def extra():
                """An extra command from the same plugin."""

    group = RecfeatGroup("root")
    original = click.Command("plugins")
    group.add_command(original)
    assert add_plugin(Hijack(), "test-hijack")
    _register_plugin_commands(group)
    assert group.commands == {"plugins": original}  # nothing of the hijacker stays
    (failure,) = [f for f in fresh_plugins.failures() if f.name == "test-hijack"]
    assert "command 'plugins' already exists" in failure.error
    assert "test-hijack" in capsys.readouterr().err


def test_two_distributions_with_the_same_plugin_name(tmp_path, monkeypatch, fresh_plugins):
    source = "from recfeat.plugin.hookspecs import hookimpl\n\n@hookimpl\ndef register_metrics(register):\n    pass\n"
    make_entry_point_dist(tmp_path / "a", "test-same-a", {"test_same": "test_same_a"}, {"test_same_a": source})
    make_entry_point_dist(tmp_path / "b", "test-same-b", {"test_same": "test_same_b"}, {"test_same_b": source})
    monkeypatch.syspath_prepend(str(tmp_path / "a"))
    monkeypatch.syspath_prepend(str(tmp_path / "b"))
    monkeypatch.setenv("RECFEAT_LOAD_PLUGINS", "test_same")
    fresh_plugins.reset()
    loaded = fresh_plugins.plugin_info()["test_same"].distribution
    (failure,) = [f for f in fresh_plugins.failures() if f.name == "test_same"]
    assert {loaded, failure.distribution} == {"test-same-a", "test-same-b"}
    assert f"already used by distribution {loaded!r}" in failure.error

    from recfeat.cli.plugins_cmd import plugins_report

    rows = [r for r in plugins_report(include_builtin=False) if r["name"] == "test_same"]
    assert sorted(r["error"] is None for r in rows) == [False, True]
