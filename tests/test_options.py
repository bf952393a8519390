"""Options are the type-hinted keyword arguments of ``__init__``, validated by pydantic."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pytest

from recfeat.components import Cleaner
from recfeat.errors import OptionError
from recfeat.plugin.options import option_specs, validate_options

if TYPE_CHECKING:  # unresolvable at run time on purpose
    from some_missing_module import Thing  # noqa: F401


class Many(Cleaner):
    """A cleaner with one option of each common type."""

    name = "many"

    def __init__(
        self,
        size: int = 3,
        ratio: float = 0.5,
        flag: bool = False,
        label: str | None = None,
        mode: Literal["fast", "exact"] = "fast",
        words: tuple[str, ...] = (),
        json: int = 0,  # clashes with a pydantic BaseModel attribute
        model_name: str = "m",  # pydantic's protected "model_" prefix
    ):
        self.size = size
        self.ratio = ratio
        self.flag = flag
        self.label = label
        self.mode = mode
        self.words = words
        self.json = json
        self.model_name = model_name


class Unresolvable(Cleaner):
    """One annotation cannot be resolved; the others must still be checked."""

    def __init__(self, thing: Thing = None, count: int = 1):
        self.thing = thing
        self.count = count


class NoOptions(Cleaner):
    """No __init__ at all."""


def test_option_specs_reads_defaults_types_and_required():
    specs = option_specs(Many)
    assert list(specs) == ["size", "ratio", "flag", "label", "mode", "words", "json", "model_name"]
    assert specs["size"] == {"default": 3, "required": False, "type": "int"}
    assert specs["label"]["type"] == "str | None"
    assert specs["words"]["type"] == "tuple[str, ...]"
    assert option_specs(NoOptions) == {}


def test_validate_coerces_lossless_values_and_returns_only_given_keys():
    out = validate_options(
        Many, {"size": "7", "ratio": 1, "flag": "true", "words": ["a", "b"]}, what="cleaner 'many'"
    )
    assert out == {"size": 7, "ratio": 1.0, "flag": True, "words": ("a", "b")}


def test_option_names_clashing_with_pydantic_work():
    out = validate_options(Many, {"json": "5", "model_name": "x"}, what="cleaner 'many'")
    assert out == {"json": 5, "model_name": "x"}
    with pytest.raises(OptionError, match="option 'json'"):
        validate_options(Many, {"json": "five"}, what="cleaner 'many'")


@pytest.mark.parametrize(
    "options, field",
    [
        ({"size": "big"}, "size"),
        ({"size": 2.5}, "size"),  # lossy float -> int refused
        ({"ratio": "half"}, "ratio"),
        ({"flag": "perhaps"}, "flag"),
        ({"label": 3}, "label"),
        ({"mode": "slow"}, "mode"),
        ({"words": "abc"}, "words"),
    ],
)
def test_bad_values_name_the_field_value_and_expected_type(options, field):
    with pytest.raises(OptionError) as info:
        validate_options(Many, options, what="cleaner 'many'")
    msg = str(info.value)
    assert msg.count("\n") == 0
    assert msg.startswith(f"cleaner 'many': option '{field}':")
    assert repr(options[field]) in msg
    assert f"expected {option_specs(Many)[field]['type']}" in msg


def test_every_bad_field_gets_its_own_line():
    with pytest.raises(OptionError) as info:
        validate_options(Many, {"size": "x", "ratio": "y", "mode": "z"}, what="cleaner 'many'")
    lines = str(info.value).splitlines()
    assert [line.split("'")[3] for line in lines] == ["size", "ratio", "mode"]


def test_unknown_keys_list_the_valid_options():
    with pytest.raises(OptionError) as info:
        validate_options(Many, {"sise": 1, "colour": 2}, what="cleaner 'many'")
    msg = str(info.value)
    assert "'sise', 'colour'" in msg
    assert "Valid options: size, ratio, flag, label, mode, words, json, model_name" in msg
    with pytest.raises(OptionError, match=r"Valid options: \(none\)"):
        validate_options(NoOptions, {"x": 1}, what="cleaner 'none'")


def test_long_values_are_shortened_in_messages():
    with pytest.raises(OptionError) as info:
        validate_options(Many, {"size": "x" * 500}, what="cleaner 'many'")
    assert len(str(info.value)) < 200


def test_unresolvable_annotation_only_disables_its_own_check():
    specs = option_specs(Unresolvable)
    assert specs["thing"]["type"] == "any" and specs["count"]["type"] == "int"
    assert validate_options(Unresolvable, {"thing": object, "count": "2"}, what="x") == {
        "thing": object,
        "count": 2,
    }
    with pytest.raises(OptionError, match="option 'count'"):
        validate_options(Unresolvable, {"count": "two"}, what="x")


def test_arbitrary_types_are_checked_by_isinstance():
    class WithPath(Cleaner):
        """Takes a Path."""

        def __init__(self, where: Path = Path(".")):
            self.where = where

    assert validate_options(WithPath, {"where": "a/b"}, what="x")["where"] == Path("a/b")


def test_component_get_options_and_repr_read_the_attributes():
    many = Many(size=4, mode="exact")
    assert many.get_options()["size"] == 4
    assert repr(many).startswith("Many(size=4, ratio=0.5, flag=False, label=None, mode='exact'")
