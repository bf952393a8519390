"""Every section a pipeline config accepts is read by a command; flags override the file;
what no command reads is rejected with one line."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import assert_one_line_error
from test_models import synthetic  # tests/ is on sys.path (pytest rootdir import mode)

from recfeat.cli.main import cli
from recfeat.config import SECTIONS, SETTINGS, parse_key_values, validate_config
from recfeat.data.features import read_features
from recfeat.errors import UsageError

REVIEWS_CSV = """user,item,rating,review
ann,b1,5,"A gripping mystery, I read it in one night."
ann,b2,2,Too slow for me.
bob,b1,4,Clever plot and a satisfying ending.
bob,b3,5,"Beautiful prose; the best novel this year."
cat,b3,4,Lovely characters.
"""


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("RECFEAT_CACHE_DIR", str(tmp_path / "cache"))


def run(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def write(tmp_path, text: str, name: str = "pipeline.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- the schema --------------------------------------------------------------------------------


def test_a_setting_nobody_reads_is_rejected_in_one_line(tmp_path):
    config = write(tmp_path, '[pipeline]\nlevle = "item"\n')
    (problem,) = validate_config({"pipeline": {"levle": "item"}}, "p.toml")
    assert "unknown setting 'levle'" in problem and "Did you mean 'level'?" in problem
    assert_one_line_error(run("config", "validate", config), 2, "1 problem")
    out = tmp_path / "x.parquet"
    assert_one_line_error(
        run("extract", "sample", "--config", config, "--out", out), 2, "unknown setting 'levle'"
    )
    assert not out.exists()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('[pipeline]\nlevel = "items"\n', "level = 'items' is not one of review, item, user"),
        ("[pipeline]\nk = 2.5\n", "k must be int"),
        ('[exporters]\nuse = "onnx"\n', "unknown section 'exporters'. Did you mean 'exporter'?"),
    ],
)
def test_bad_settings_and_sections_are_one_line_each(tmp_path, text, fragment):
    assert_one_line_error(run("evaluate", "x.csv", "--config", write(tmp_path, text)), 2, fragment)


def test_validate_help_documents_who_reads_what_and_precedence():
    text = " ".join(run("config", "validate", "--help").output.split())
    for section in [*SECTIONS, *SETTINGS]:
        assert section in text, section
    assert "command-line flag > config file > built-in default" in text


# -- one KEY=VALUE parser -------------------------------------------------------------------------


def test_key_value_parser_types_values_like_toml():
    assert parse_key_values(["a=1", "b=2.5", "c=true", "d=null", "e=x", "f=[1,2]", "g="]) == {
        "a": 1, "b": 2.5, "c": True, "d": None, "e": "x", "f": [1, 2], "g": "",
    }  # fmt: skip
    assert parse_key_values(["mf.factors=50", "mf.reg=0.1", "bias.reg_user=3"], scoped=True) == {
        "mf": {"factors": 50, "reg": 0.1}, "bias": {"reg_user": 3},
    }  # fmt: skip
    with pytest.raises(UsageError) as info:
        parse_key_values(["mf=3"], flag="-O", example="mf.factors=50", scoped=True)
    assert str(info.value) == "-O 'mf=3' is not MODEL.KEY=VALUE; write e.g. -O mf.factors=50"
    with pytest.raises(UsageError, match="--option 'novalue' is not KEY=VALUE"):
        parse_key_values(["novalue"])


# -- extract reads [pipeline] level ----------------------------------------------------------------


def test_extract_honours_the_configs_level_and_the_flag_overrides_it(tmp_path):
    data = write(tmp_path, REVIEWS_CSV, "book_reviews.csv")
    config = write(
        tmp_path,
        '[pipeline]\nlevel = "item"\n[dataset]\nuse = "csv"\ntext_col = "review"\n'
        '[encoder]\nuse = "minilm"\nmax_length = 32\n',
    )
    out = tmp_path / "items.parquet"
    r = run("extract", data, "--config", config, "--out", out)
    assert r.exit_code == 0, r.output
    ids, vectors, manifest = read_features(out)
    assert manifest["level"] == "item" and len(ids) == 3
    out2 = tmp_path / "reviews.parquet"
    r = run("extract", data, "--config", config, "--level", "review", "--out", out2)
    assert r.exit_code == 0, r.output
    assert read_features(out2)[2]["level"] == "review"


# -- evaluate reads models, metrics, [pipeline] split settings --------------------------------------


@pytest.fixture(scope="module")
def ratings(tmp_path_factory):
    inter, _, _, _ = synthetic(n_users=40, n_items=25)
    path = tmp_path_factory.mktemp("eval") / "ratings.csv"
    inter.to_csv(path, index=False)
    return path


EVAL_CONFIG = """
[pipeline]
split = "random"
k = 5
seed = 3
test_fraction = 0.25

[[models]]
use = "bias"
reg_user = 4.0

[[models]]
use = "popularity"

[[metrics]]
use = "rmse"

[[metrics]]
use = "ndcg@k"
k = 3
"""


def test_evaluate_reads_models_metrics_and_split_settings(ratings, tmp_path):
    config = write(tmp_path, EVAL_CONFIG)
    r = run("evaluate", ratings, "--config", config, "--json")
    assert r.exit_code == 0, r.output
    result = json.loads(r.output)
    assert list(result["models"]) == ["bias(reg_user=4.0)", "popularity"]
    assert result["metrics"] == ["rmse", "ndcg@3"]
    assert (result["k"], result["seed"]) == (5, 3)
    assert (result["split"]["split"], result["split"]["test_fraction"]) == ("random", 0.25)

    # flags override the file: --models replaces the list (a kept model keeps its options),
    # -O applies on top, --k and --metrics replace the file's
    r = run("evaluate", ratings, "--config", config, "--json", "--models", "bias,global-mean",
            "-O", "bias.reg_item=2", "--k", "4", "--metrics", "rmse,ndcg@k")  # fmt: skip
    assert r.exit_code == 0, r.output
    result = json.loads(r.output)
    assert list(result["models"]) == ["bias(reg_user=4.0, reg_item=2)", "global-mean"]
    assert result["metrics"] == ["rmse", "ndcg@4"] and result["k"] == 4


def test_evaluate_config_with_an_unknown_model_option_is_one_line(ratings, tmp_path):
    config = write(tmp_path, '[[models]]\nuse = "bias"\nfactors = 3\n')
    assert_one_line_error(run("evaluate", ratings, "--config", config), 2, "unknown option 'factors'")


# -- export reads [exporter] ------------------------------------------------------------------------


def test_export_reads_exporter_options_from_the_config(tmp_path):
    from _export_helpers import make_tiny

    model = make_tiny("distilbert", tmp_path / "tiny")
    config = write(tmp_path, '[exporter]\nuse = "onnx"\nopset = 9\n')
    base = [
        "export",
        "--encoder",
        model,
        "--out",
        tmp_path / "o",
        "--config",
        config,
    ]
    assert_one_line_error(run(*base), 2, "opset 9 is too old")
    assert not (tmp_path / "o").exists()
    r = run(*base, "--opset", "17")  # the flag wins over the file
    assert r.exit_code == 0, r.output
    assert '"opset": 17' in (tmp_path / "o" / "manifest.json").read_text()


# -- tokenize reads [tokenizer] ----------------------------------------------------------------------


def test_tokenize_reads_the_tokenizer_table_and_flags_override_it(tmp_path):
    config = write(tmp_path, '[tokenizer]\nuse = "hf"\nmax_length = 4\n')
    text = "a rather long sentence with many words in it\n"
    r = CliRunner().invoke(cli, ["tokenize", "--config", str(config)], input=text)
    assert r.exit_code == 0, r.output
    assert "max_length=4" in r.stderr
    r = CliRunner().invoke(
        cli, ["tokenize", "--config", str(config), "--max-length", "6"], input=text
    )
    assert r.exit_code == 0, r.output
    assert "max_length=6" in r.stderr


def test_export_reads_the_encoder_to_export_from_the_config(tmp_path, monkeypatch):
    """[encoder] names what `export` exports when --encoder is not given; the flag wins."""
    from recfeat.exporters.plugin import OnnxExporter

    seen = []

    def spy(self, encoder, out_dir, **kwargs):  # records what the command hands the exporter
        seen.append((encoder.name, encoder.init))
        return {"source": {"model": encoder.model, "random_init": True}, "family": "gpt2",
                "default_file": "model.onnx", "pooling": "last-token"}  # fmt: skip

    monkeypatch.setattr(OnnxExporter, "export", spy)
    config = write(tmp_path, '[encoder]\nuse = "gpt2"\ninit = "random"\n')
    assert run("export", "--config", config, "--out", tmp_path / "a").exit_code == 0
    assert run("export", "--config", config, "--encoder", "distilbert", "--init", "random",
               "--out", tmp_path / "b").exit_code == 0  # fmt: skip
    assert seen == [("gpt2", "random"), ("distilbert", "random")]
