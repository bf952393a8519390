"""docs/plugins.md documents every hook with its signature and a working example, and every
hook is exercised here through a throwaway plugin built from that very example."""

from __future__ import annotations

import inspect
import re
import types

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import REPO

from recfeat.components import Encoder
from recfeat.plugin import hookspecs
from recfeat.plugin.registry import KINDS, get_registry

GUIDE = REPO / "docs" / "plugins.md"
HOOKS = sorted(
    name
    for name, fn in vars(hookspecs).items()
    if inspect.isfunction(fn) and hasattr(fn, "recfeat_spec")
)


def signature(hook: str) -> str:
    return f"{hook}{inspect.signature(getattr(hookspecs, hook))}"


def sections() -> dict[str, str]:
    """``### heading`` -> the text below it, up to the next heading of level 2 or 3."""
    text = GUIDE.read_text(encoding="utf-8")
    parts = re.split(r"^(#{2,3} .*)$", text, flags=re.M)
    return {parts[i].lstrip("#").strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def example(hook: str) -> str:
    body = sections()[signature(hook)]
    blocks = re.findall(r"```python\n(.*?)```", body, flags=re.S)
    assert blocks, f"no python example under '### {signature(hook)}'"
    return blocks[0]


def test_there_are_hooks_and_every_registry_has_one():
    assert set(KINDS.values()) <= set(HOOKS)
    assert set(HOOKS) - set(KINDS.values()) == {"register_commands"}


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented_with_its_signature(hook):
    assert signature(hook) in sections(), f"docs/plugins.md lacks a '### {signature(hook)}' section"
    spec_doc = inspect.getdoc(getattr(hookspecs, hook))
    assert spec_doc and "Return value is ignored" in spec_doc  # says what a return means
    # the guide repeats the spec's docstring word for word, so the two stay in step
    spec_words = " ".join(spec_doc.replace("``", "`").split())
    assert spec_words in " ".join(sections()[signature(hook)].split())


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_example_in_the_guide_works(hook, add_plugin, tmp_path):
    module = types.ModuleType(f"docs_example_{hook}")
    exec(compile(example(hook), f"docs/plugins.md:{hook}", "exec"), module.__dict__)
    assert hasattr(module, hook), "the example must implement the hook it documents"
    assert add_plugin(module, f"docs-{hook}")
    from recfeat.plugin.manager import failures

    if hook == "register_commands":
        from recfeat.cli.main import RecfeatGroup, _register_plugin_commands

        group = RecfeatGroup("test-root")
        _register_plugin_commands(group)
        (name,) = group.commands
        words = tmp_path / "words.txt"
        words.write_text("one two\nthree\n", encoding="utf-8")
        result = CliRunner().invoke(group, [name, str(words)])
        assert result.exit_code == 0, result.output
        assert result.output.strip() == "3"
    else:
        kind = next(k for k, h in KINDS.items() if h == hook)
        registry = get_registry(kind)
        (entry,) = [registry.entry(n) for n in registry.names() if registry.entry(n).plugin == f"docs-{hook}"]
        assert entry.doc()  # a one-line docstring for `recfeat components`
        SMOKE[kind](registry.create(entry.name), tmp_path)
    assert [f for f in failures() if f.name == f"docs-{hook}"] == []


def _cleaner(cleaner, tmp_path):
    assert cleaner.clean(["soooooo good!!!!!", "很好"]) == ["sooo good!!!", "很好"]


def _tokenizer(tok, tmp_path):
    batch = tok.tokenize(["a b c", ""])
    assert [len(x) for x in batch.ids] == [3, 0]
    ids, mask = batch.padded(tok.pad_id)
    assert ids.shape == mask.shape == (2, 3) and mask.sum() == 3
    assert max(max(batch.ids[0]), 0) < tok.vocab_size


def _encoder(enc, tmp_path):
    vecs = enc.encode(["great guitar", "bad strings"])
    assert vecs.dtype == np.float32 and vecs.shape == (2, enc.dim)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-5)


def _model(model, tmp_path):
    train = pd.DataFrame(
        {"user": ["a", "b", "c", "a"], "item": ["x", "x", "y", "y"], "rating": [5.0, 5.0, 1.0, 2.0], "timestamp": 0}
    )
    pred = model.fit(train).predict(["a", "a", "z"], ["x", "y", "new"])
    assert pred[0] > pred[1]  # x is liked, y is not
    assert pred[2] == pytest.approx(13 / 4)  # unseen item: the global mean


def _dataset(loader, tmp_path):
    path = tmp_path / "ratings.triples"
    path.write_text("u1\ti1\t4\nu2\ti1\t2\n", encoding="utf-8")
    assert type(loader).sniff(path)
    data = loader.load(path)
    assert list(data.interactions["user"]) == ["u1", "u2"]
    assert data.rating_scale == (2.0, 4.0)
    from recfeat.errors import DataError

    with pytest.raises(DataError, match="does not exist"):
        loader.load(tmp_path / "missing.triples")


def _metric(metric, tmp_path):
    assert metric([np.array([3, 1]), np.array([2, 0])], [np.array([3]), np.array([0])]) == 0.5


class _ConstantEncoder(Encoder):
    """Every text -> (1, 0)."""

    name = "constant"

    @property
    def dim(self):
        return 2

    def encode(self, texts):
        return np.tile(np.array([1, 0], dtype=np.float32), (len(texts), 1))


def _exporter(exporter, tmp_path):
    manifest = exporter.export(_ConstantEncoder(), tmp_path / "out")
    assert (tmp_path / "out" / "manifest.json").is_file()
    assert np.load(tmp_path / "out" / "vectors.npy").shape == (len(manifest["probes"]), 2)


SMOKE = {
    "cleaner": _cleaner,
    "tokenizer": _tokenizer,
    "encoder": _encoder,
    "model": _model,
    "dataset": _dataset,
    "metric": _metric,
    "exporter": _exporter,
}


def test_every_kind_has_a_smoke_check():
    assert set(SMOKE) == set(KINDS)


def test_guide_covers_base_classes_conventions_and_the_example_package():
    text = GUIDE.read_text(encoding="utf-8")
    import recfeat.components as components

    for base in components.__all__:
        if base not in ("Component", "TokenBatch"):
            assert f"`{base}`" in text, base
    for must in (
        "RECFEAT_LOAD_PLUGINS",
        "[project.entry-points.recfeat]",
        "check_pending",
        "register(cls, name=None, aliases=())",
        "## Options",
        "## Errors",
        "OptionError",
        "examples/recfeat-example-plugin",
    ):
        assert must in text, must


def test_relative_links_in_the_guide_exist():
    text = GUIDE.read_text(encoding="utf-8")
    links = re.findall(r"\]\((\.\./[^)#]+)\)", text)
    assert links
    for link in links:
        assert (GUIDE.parent / link).resolve().exists(), link
