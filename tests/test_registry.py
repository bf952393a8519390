"""The registry API: register, get, create, names, describe; unknown and duplicate names."""

from __future__ import annotations

import json
from typing import Literal

import pytest

from recfeat.components import Cleaner, Encoder
from recfeat.errors import (
    DuplicateComponentError,
    OptionError,
    RecfeatError,
    UnknownComponentError,
)
from recfeat.plugin.registry import KINDS, Registry, get_registry, normalize_kind


class Upper(Cleaner):
    """Uppercase the text."""

    name = "upper"
    aliases = ("shout",)

    def __init__(self, times: int = 1, mode: Literal["ascii", "unicode"] = "unicode"):
        self.times = times
        self.mode = mode

    def clean_text(self, text: str) -> str:
        return text.upper() * self.times


class Strip(Cleaner):
    """Strip the ends.

    A second paragraph that describe() must not show.
    """

    name = "strip"

    def clean_text(self, text: str) -> str:
        return text.strip()


class NeedsPath(Cleaner):
    """Needs a required option."""

    name = "needs-path"

    def __init__(self, path: str, extra: tuple[str, ...] = ("a", "b"), ratio: float = float("nan")):
        self.path = path
        self.extra = extra
        self.ratio = ratio


@pytest.fixture()
def reg() -> Registry:
    """A standalone cleaner registry that never calls the plugin hooks."""
    r = Registry("cleaner", autoload=False)
    r.register(Upper, plugin="plugin-a")
    r.register(Strip, plugin="plugin-a")
    return r


def test_register_uses_class_name_and_aliases_by_default(reg):
    assert reg.get("upper") is Upper
    assert reg.get("shout") is Upper  # alias from the class
    assert reg.names() == ["strip", "upper"]  # aliases are not names
    assert "shout" in reg and "nothing" not in reg


def test_register_explicit_name_and_aliases_override_class_attributes(reg):
    reg.register(Upper, name="caps", aliases=("loud", "LOUD"), plugin="plugin-b")
    assert reg.get("caps") is Upper and reg.get("LOUD") is Upper
    assert reg.entry("loud").name == "caps"
    assert reg.entry("loud").plugin == "plugin-b"


def test_register_returns_the_class_and_name_in_aliases_is_ignored(reg):
    class Tiny(Cleaner):
        """Tiny."""

        def clean_text(self, text):
            return text[:1]

    assert reg.register(Tiny, name="tiny", aliases=("tiny", "t")) is Tiny
    assert reg.entry("tiny").aliases == ("t",)


def test_create_validates_and_coerces_options(reg):
    cleaner = reg.create("shout", times="2")  # TOML/CLI strings are coerced when lossless
    assert isinstance(cleaner, Upper)
    assert cleaner.times == 2
    assert cleaner.clean(["ab"]) == ["ABAB"]


def test_create_rejects_unknown_options_listing_valid_ones(reg):
    with pytest.raises(OptionError) as info:
        reg.create("upper", tims=2)
    msg = str(info.value)
    assert "'tims'" in msg and "cleaner 'upper'" in msg
    assert "Did you mean 'times'?" in msg
    assert "Valid options: times, mode" in msg
    assert "\n" not in msg


def test_create_reports_each_bad_field_on_its_own_line(reg):
    with pytest.raises(OptionError) as info:
        reg.create("upper", times="many", mode="ebcdic")
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("cleaner 'upper': option 'times'") and "'many'" in lines[0]
    assert "expected int" in lines[0]
    assert lines[1].startswith("cleaner 'upper': option 'mode'") and "'ascii'" in lines[1]


def test_create_reports_missing_required_option(reg):
    reg.register(NeedsPath, plugin="plugin-a")
    with pytest.raises(OptionError, match="missing required option 'path'"):
        reg.create("needs-path")
    assert reg.create("needs-path", path="x").path == "x"


def test_unknown_name_lists_known_names_and_closest_match(reg):
    with pytest.raises(UnknownComponentError) as info:
        reg.get("uper")
    msg = str(info.value)
    assert "unknown cleaner 'uper'" in msg
    assert "Did you mean 'upper'?" in msg
    assert "Known cleaners: strip, upper" in msg
    assert info.value.exit_code == 2


def test_unknown_name_without_close_match_has_no_guess(reg):
    with pytest.raises(UnknownComponentError) as info:
        reg.create("zzzzzzzz")
    assert "Did you mean" not in str(info.value)


def test_duplicate_name_names_both_plugins(reg):
    class Other(Cleaner):
        """Other."""

        name = "upper"

    with pytest.raises(DuplicateComponentError) as info:
        reg.register(Other, plugin="plugin-b")
    msg = str(info.value)
    assert "'plugin-a'" in msg and "'plugin-b'" in msg
    assert "Upper" in msg and "Other" in msg
    assert reg.get("upper") is Upper  # the first registration stands


def test_duplicate_alias_is_rejected_too(reg):
    class Other(Cleaner):
        """Other."""

    with pytest.raises(DuplicateComponentError, match="'shout'"):
        reg.register(Other, name="other", aliases=("shout",), plugin="plugin-b")
    assert "other" not in reg  # nothing half-registered


def test_register_rejects_wrong_base_class_and_non_classes(reg):
    class NotACleaner(Encoder):
        """An encoder."""

    with pytest.raises(RecfeatError, match="not a subclass of recfeat.components.Cleaner"):
        reg.register(NotACleaner, name="nope", plugin="plugin-b")
    with pytest.raises(RecfeatError, match="register the class itself"):
        reg.register(Upper(), name="instance", plugin="plugin-b")


def test_unregister_and_unregister_plugin(reg):
    reg.unregister("upper")
    assert "upper" not in reg and "shout" not in reg
    reg.register(Upper, plugin="plugin-b")
    reg.unregister_plugin("plugin-a")
    assert reg.names() == ["upper"]


def test_describe_is_json_ready_with_one_line_doc_and_options(reg):
    reg.register(NeedsPath, plugin="plugin-c")
    items = {item["name"]: item for item in reg.describe()}
    json.dumps(list(items.values()), allow_nan=False)  # strict JSON: no NaN
    upper = items["upper"]
    assert upper["kind"] == "cleaner"
    assert upper["aliases"] == ["shout"]
    assert upper["plugin"] == "plugin-a"
    assert upper["class"].endswith("test_registry.Upper")
    assert upper["doc"] == "Uppercase the text."
    assert upper["options"]["times"] == {"default": 1, "required": False, "type": "int"}
    assert upper["options"]["mode"]["type"] == "Literal['ascii', 'unicode']"
    assert items["strip"]["doc"] == "Strip the ends."
    assert items["strip"]["options"] == {}
    needs = items["needs-path"]["options"]
    assert needs["path"] == {"default": None, "required": True, "type": "str"}
    assert needs["extra"]["default"] == ["a", "b"]
    assert needs["ratio"]["default"] == "nan"


@pytest.mark.parametrize("spelling", ["encoder", "encoders", "Encoders", "ENCODER"])
def test_normalize_kind_accepts_singular_plural_and_case(spelling):
    assert normalize_kind(spelling) == "encoder"


def test_unknown_kind_suggests_the_closest():
    with pytest.raises(UnknownComponentError) as info:
        get_registry("encodrs")
    assert "Did you mean 'encoder'?" in str(info.value)
    assert all(kind in str(info.value) for kind in KINDS)


def test_get_registry_is_one_per_kind(fresh_plugins):
    assert get_registry("cleaners") is get_registry("cleaner")
    assert get_registry("cleaner") is not get_registry("encoder")


def test_global_registry_fills_from_plugins(add_plugin):
    from recfeat.plugin.hookspecs import hookimpl

    class Plugin:
        @hookimpl
        def register_cleaners(self, register):
            register(Upper, name="test-upper", aliases=("test-shout",))

    assert add_plugin(Plugin(), "test-registry-plugin")
    entry = get_registry("cleaner").entry("test-shout")
    assert entry.cls is Upper and entry.plugin == "test-registry-plugin"
