"""Imports flow one way: no import cycles, and core never reaches up into its users.

Layers, bottom to top:

- core: ``recfeat`` (the ``core/`` folder) without ``recfeat.cli`` and ``recfeat.api``;
- ``recfeat.plugins`` and ``recfeat.exporters``: may import core;
- ``recfeat.cli`` and ``recfeat.api`` (the Python API): the top, may import everything.

Core reaches components through the registry (``get_registry("dataset")`` ...), never by
importing ``recfeat.plugins``, ``recfeat.exporters``, ``recfeat.cli`` or ``recfeat.api``, at
module level or inside a function. ``ALLOWED`` names every remaining exception and why;
shrink it, never grow it without a reason.

The cycle check is the shared tool ``shared/tools/import_cycles.py`` beside the clone (it
must be there under CI=true); without it, the same AST check runs from this file.
"""

from __future__ import annotations

import ast
import os
import runpy
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CYCLE_TOOL = Path(__file__).resolve().parents[2] / "shared" / "tools" / "import_cycles.py"
# folder -> package, as in pyproject.toml's [tool.setuptools.package-dir]
ROOTS = {"core": "recfeat", "plugins": "recfeat.plugins", "exporters": "recfeat.exporters"}
# recfeat.api (the Python API) sits at the top beside the CLI, as its docstring says.
UPPER = ("recfeat.plugins", "recfeat.exporters", "recfeat.cli", "recfeat.api")

# (importing module, imported package) -> why it is still allowed. Empty: core reaches
# plugins and exporters only through the registry. A new entry needs its reason here.
ALLOWED: dict[tuple[str, str], str] = {}


def _modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for folder, package in ROOTS.items():
        root = REPO / folder
        for path in root.rglob("*.py"):
            rel = path.relative_to(root).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            mods[".".join([package, *parts])] = path
    return mods


def _imports(module: str, path: Path) -> list[tuple[str, int]]:
    """Every module named by an import statement anywhere in the file, with its line."""
    tree = ast.parse(path.read_text(), filename=str(path))
    base = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = base.split(".")
                root = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{root}.{node.module}" if node.module else root
            else:
                target = node.module or ""
            found.append((target, node.lineno))
            found += [(f"{target}.{a.name}", node.lineno) for a in node.names]
    return found


def _layer_violations() -> dict[tuple[str, str], list[str]]:
    out: dict[tuple[str, str], list[str]] = {}
    for module, path in _modules().items():
        if any(module == u or module.startswith(u + ".") for u in UPPER):
            continue  # only core is constrained
        for target, line in _imports(module, path):
            for upper in UPPER:
                if target == upper or target.startswith(upper + "."):
                    where = f"{path.relative_to(REPO)}:{line} imports {target}"
                    out.setdefault((module, upper), []).append(where)
    return out


def test_core_does_not_import_plugins_exporters_or_cli():
    found = _layer_violations()
    new = {k: v for k, v in found.items() if k not in ALLOWED}
    assert not new, "core imports an upper layer (use the registry or a core module):\n" + "\n".join(
        w for ws in new.values() for w in ws
    )


def test_allow_list_has_no_stale_entries():
    stale = sorted(set(ALLOWED) - set(_layer_violations()))
    assert not stale, f"these exceptions no longer occur; remove them from ALLOWED: {stale}"


# Inside core: package -> packages it never imports (docs/architecture.md's layers). Data
# sits below components and the engine; choosing a backend below the benchmark harness;
# serving and training on saved models without the evaluation.
NEVER: dict[str, tuple[str, ...]] = {
    "recfeat.data": ("recfeat.components", "recfeat.encode", "recfeat.extraction", "recfeat.evaluation",
                     "recfeat.training", "recfeat.selection", "recfeat.bench", "recfeat.serve"),
    "recfeat.extraction": ("recfeat.evaluation", "recfeat.training", "recfeat.selection", "recfeat.bench",
                           "recfeat.serve"),
    "recfeat.training": ("recfeat.evaluation", "recfeat.selection", "recfeat.bench", "recfeat.serve"),
    "recfeat.selection": ("recfeat.bench", "recfeat.serve"),
    "recfeat.serve": ("recfeat.evaluation", "recfeat.selection", "recfeat.bench"),
}  # fmt: skip


def test_core_packages_import_only_the_layers_below_them():
    found = []
    for module, path in _modules().items():
        for package, never in NEVER.items():
            if module != package and not module.startswith(package + "."):
                continue
            for target, line in _imports(module, path):
                hit = next((n for n in never if target == n or target.startswith(n + ".")), None)
                if hit:
                    found.append(f"{path.relative_to(REPO)}:{line} imports {target} ({package} is below {hit})")
    assert not found, "an import against the layers:\n" + "\n".join(found)


# The layers docs/architecture.md draws, bottom to top: a package imports only packages of a
# lower tier (the leaf utilities may also import each other). Checked over every import in a
# file, deferred (inside a function) and string-named (``"recfeat.x.y"`` constants, as lazy
# imports and plugin lists name modules) included.
TIERS: list[tuple[str, ...]] = [
    ("recfeat.errors", "recfeat.atomic", "recfeat.progress", "recfeat.jsonable",
     "recfeat.machine", "recfeat.outputs_guard"),
    ("recfeat.plugin",),
    ("recfeat.data",),
    ("recfeat.components",),
    ("recfeat.config",),
    ("recfeat.encode",),
    ("recfeat.extraction",),
    ("recfeat.evaluation", "recfeat.training", "recfeat.sequential"),
    ("recfeat.explanations",),
    ("recfeat.selection", "recfeat.serve"),
    ("recfeat.finetuning",),
    ("recfeat.bench", "recfeat.settings", "recfeat.demo"),
    ("recfeat.plugins", "recfeat.exporters"),
    ("recfeat.api",),
    ("recfeat.cli",),
]  # fmt: skip
LEAF = TIERS[0]
# What any layer may take from the package root: its own light names (no API behind them).
ROOT_NAMES = {"recfeat", "recfeat.__version__", "recfeat.get_registry", "recfeat.hookimpl",
              "recfeat.RecfeatError"}  # fmt: skip
# (importing package, imported package) -> why an upward import is still allowed.
UPWARD_ALLOWED: dict[tuple[str, str], str] = {
    ("recfeat.plugin", "recfeat.plugins"): "the registry loads the built-in plugins by name "
    "(plugin.manager.DEFAULT_PLUGINS): the one way core reaches them",
    ("recfeat.plugin", "recfeat.exporters"): "the same list names the exporters' plugin module",
    ("recfeat.plugin", "recfeat.components"): "the registry checks a registered class against "
    "its kind's base class (registry.BASES), named as a string so the kernel loads none of "
    "them until something registers",
}
# The CLI parses, calls the Python API and prints: it imports nothing else of recfeat, save
# the leaf that prints a line above a live progress bar (printing, not work).
CLI_MAY_IMPORT = ("recfeat.api", "recfeat.cli", "recfeat.errors", "recfeat.progress")


def _tier(name: str) -> tuple[int, str] | None:
    for rank, packages in enumerate(TIERS):
        for package in packages:
            if name == package or name.startswith(package + "."):
                return rank, package
    return None


def _string_imports(path: Path) -> list[tuple[str, int]]:
    """String constants that name a recfeat module (lazy imports, plugin lists)."""
    import re

    tree = ast.parse(path.read_text(), filename=str(path))
    pattern = re.compile(r"recfeat(\.[A-Za-z_][A-Za-z0-9_]*)+")
    return [(node.value, node.lineno) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and pattern.fullmatch(node.value)]  # fmt: skip


def upward_imports(module: str, path: Path) -> list[str]:
    """Every import in ``module`` (file ``path``) against the tiers, one line each."""
    here = _tier(module)
    if here is None:  # the package root: the facade, it may name anything
        return []
    rank, package = here
    found: list[str] = []
    seen: set[tuple[int, str]] = set()  # one line per statement and package
    for target, line in _imports(module, path) + _string_imports(path):
        if target in ROOT_NAMES or not target.startswith("recfeat"):
            continue
        there = _tier(target)
        if there is None:
            continue
        their_rank, their_package = there
        if (line, their_package) in seen:
            continue
        seen.add((line, their_package))
        if their_package == package or (package in LEAF and their_package in LEAF):
            continue
        if their_rank >= rank and (package, their_package) not in UPWARD_ALLOWED:
            found.append(f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}:{line}"
                         f" {package} imports {target} (tier {their_rank} >= {rank})")  # fmt: skip
        if package == "recfeat.cli" and their_package not in CLI_MAY_IMPORT:
            found.append(f"{path}:{line} the CLI imports {target}; call recfeat.api instead")
    return found


def test_every_package_is_in_a_tier():
    packages = {m.split(".")[1] for m in _modules() if m.count(".") >= 1}
    missing = sorted(p for p in packages if _tier(f"recfeat.{p}") is None)
    assert not missing, f"add these packages to TIERS (and to docs/architecture.md): {missing}"


def test_imports_follow_the_tiers():
    found = [w for module, path in _modules().items() for w in upward_imports(module, path)]
    assert not found, "imports against the layers of docs/architecture.md:\n" + "\n".join(found)


def test_the_tier_check_fails_on_an_upward_import(tmp_path):
    """The check sees a deferred upward import, a string-named one and a CLI shortcut."""
    src = tmp_path / "fake.py"
    src.write_text(
        "import recfeat.errors\n"
        "from recfeat import __version__\n"
        "def f():\n    from recfeat.extraction.stages import encode_texts\n"
        'LAZY = {"x": "recfeat.api"}\n'
    )
    found = upward_imports("recfeat.data.fake", src)
    assert len(found) == 2, found
    assert "recfeat.extraction.stages" in found[0] and "recfeat.api" in found[1]
    assert [w.split(" imports ")[1] for w in upward_imports("recfeat.bench.fake", src)] == [
        "recfeat.api (tier 13 >= 11)"
    ]
    cli = tmp_path / "cmd.py"
    cli.write_text("def run():\n    from recfeat.evaluation.protocol import evaluate\n")
    assert any("call recfeat.api" in w for w in upward_imports("recfeat.cli.cmd", cli))


def test_architecture_doc_draws_every_tier():
    doc = (REPO / "docs" / "architecture.md").read_text()
    missing = [p for tier in TIERS for p in tier if p not in doc]
    assert not missing, f"docs/architecture.md does not show: {missing}"


# Packages whose recfeat imports all sit at module level, so the graph is what the file
# says at the top (deferred imports stay for heavy third-party libraries only).
MODULE_LEVEL_IMPORTS = ("recfeat.extraction",)


def test_project_imports_are_at_module_level_where_promised():
    found = []
    for module, path in _modules().items():
        if not any(module == p or module.startswith(p + ".") for p in MODULE_LEVEL_IMPORTS):
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        top = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top:
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                if node.__class__ is ast.ImportFrom and node.level or any(n.startswith("recfeat") for n in names):
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not found, "function-level project imports (move them to the top):\n" + "\n".join(found)


def _cycles_here() -> list[list[str]]:
    """The shared tool's check (same edges, same SCCs) over the source folders."""
    mods = _modules()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        is_pkg = p.name == "__init__.py"
        for t, _line in _imports(m, p):
            if t in mods and t != m and not (is_pkg and t.startswith(m + ".")):
                edges[m].add(t)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in mods:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles_shared_tool(capsys, monkeypatch):
    if not CYCLE_TOOL.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{CYCLE_TOOL} is missing; CI checks out ../shared beside the clone")
        pytest.skip(f"{CYCLE_TOOL} not found (the in-repo check below still runs)")
    monkeypatch.setattr(sys, "argv", [str(CYCLE_TOOL), "recfeat"])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(CYCLE_TOOL), run_name="__main__")
    output = capsys.readouterr().out
    assert done.value.code == 0, output
    assert " 0 import cycles" in output


def test_no_import_cycles_in_the_sources():
    cycles = _cycles_here()
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_checker_sees_function_level_and_relative_imports(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from ..plugins import x\n    import recfeat.cli.main\n")
    got = {t for t, _ in _imports("recfeat.bench.m", src)}
    assert {"recfeat.plugins", "recfeat.plugins.x", "recfeat.cli.main"} <= got
