"""One settings resolver (``recfeat.settings``): defaults < config file < flags or keyword
arguments, the same for the CLI and the Python API; bad values are one RecfeatError naming
the flag, raised before anything runs or is written."""

from __future__ import annotations

import pytest

import recfeat.api as api
from recfeat.errors import RecfeatError


@pytest.fixture()
def config(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[encoder]\nuse = "minilm"\nmax_length = 48\npooling = "cls"\n'
                    '[pipeline]\nlevel = "user"\n')  # fmt: skip
    return path


def test_extract_settings_layer_defaults_config_and_flags(config):
    plain = api.extract_settings(None, data="x.json")
    assert plain.level == "review" and plain.encoder_options.get("max_length") is None
    configured = api.extract_settings(config, data="x.json")
    assert configured.level == "user"
    assert configured.encoder_options["max_length"] == 48
    flagged = api.extract_settings(config, data="x.json", level="item", max_length=32)
    assert flagged.level == "item" and flagged.encoder_options["max_length"] == 32
    assert flagged.encoder_options["pooling"] == "cls"  # the config's, not overridden
    # a config given as a dict resolves exactly as the file
    as_dict = api.extract_settings({"encoder": {"use": "minilm", "max_length": 48,
                                                "pooling": "cls"},
                                    "pipeline": {"level": "user"}}, data="x.json")  # fmt: skip
    assert as_dict.encoder_options == configured.encoder_options
    assert as_dict.level == configured.level


def test_another_encoder_on_the_command_line_drops_the_configs_options(config):
    other = api.extract_settings(config, data="x.json", encoder="bert-base")
    assert "pooling" not in other.encoder_options and "max_length" not in other.encoder_options


def test_export_settings_take_the_config_encoder_and_flag_overrides(config):
    settings = api.export_settings(config, max_length=64)
    assert settings.encoder_options["max_length"] == 48 and settings.encoder_options["pooling"] == "cls"
    assert settings.graph == {"max_length": 64}  # the exported graph's, over the encoder's


def test_serve_settings_take_the_config_encoder(config):
    settings = api.serve_settings(config, port=8123)
    assert settings.encoder_options["max_length"] == 48 and settings.server.port == 8123


@pytest.mark.parametrize(
    ("build", "flag"),
    [
        (lambda: api.serve_settings(None, port=70000), "--port"),
        (lambda: api.serve_settings(None, max_queue=0), "--max-queue"),
        (lambda: api.serve_settings(None, backend="auto"), "auto"),
        (lambda: api.export_settings(None, max_drop="lots"), "drop"),
        (lambda: api.extract_settings(None, data="x.json", level="shop"), "level"),
        (lambda: api.extract_settings(None, data="x.json", ray="yes"), "ray"),
        (lambda: api.extract_settings({"pipeline": {"levle": 1}}, data="x.json"), "levle"),
    ],
)
def test_bad_settings_are_one_recfeat_error_naming_the_problem(build, flag):
    with pytest.raises(RecfeatError) as caught:
        build()
    assert flag in str(caught.value)
    assert "\n" not in str(caught.value).strip()
