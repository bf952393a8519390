"""Printed tables fit the terminal (recfeat.cli.tables) and the evaluation chart is a grid
that a reader can use: chance line, lower-is-better marked, no n/a bars."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from test_models import synthetic  # tests/ is on sys.path (pytest rootdir import mode)

from recfeat.cli import tables
from recfeat.cli.main import cli
from recfeat.data.recdata import RecData
from recfeat.evaluation.protocol import (
    EvaluationResult,
    evaluate,
    lower_is_better,
    plot_result,
    result_figure,
)

METRICS = ["rmse", "mae", "precision@10", "recall@10", "f1@10", "ndcg@10", "hitrate@10",
           "map@10", "mrr", "coverage@10"]  # fmt: skip


def wide_rows(n_models: int = 6):
    """A model x metric table like evaluate's: rating models n/a in ranking columns and the
    other way round, numbers with 4 decimals."""
    rng = np.random.default_rng(0)
    header = ["model", *METRICS, "fit s"]
    rows = []
    for m in range(n_models):
        rating = m % 2 == 0
        cells = [f"{rng.random():.4f}" if rating == (c in ("rmse", "mae")) else
                 ("rating-only" if rating else "rank-only") for c in METRICS]  # fmt: skip
        rows.append([f"model-{m}", *cells, f"{rng.random() * 10:.1f}"])
    return header, rows


def cells_of(line: str) -> list[str]:
    return line.split()


def test_fit_80_columns_keeps_every_number_whole_and_names_what_it_left_out():
    header, rows = wide_rows()
    t = tables.fit(header, rows, width=80, na={"rating-only", "rank-only"},
                   abbreviations={"precision": "prec"}, drop_first=("f1@",), row_noun="model")  # fmt: skip
    lines = t.text().splitlines()
    assert all(len(line) <= 80 for line in lines), "\n".join(lines)
    assert not any("\u2026" in line or "..." in line for line in lines)
    table = t.table_lines()
    shown = t.columns
    assert len(shown) < len(header) and shown[0] == "model" and "prec@10" in shown
    # every shown cell is in its row exactly as given: a number is never shortened
    for row, line in zip(rows, table[1:], strict=True):
        kept = [row[header.index(c.replace("prec@", "precision@"))] for c in shown]
        expected = ["n/a" if c in ("rating-only", "rank-only") else c for c in kept]
        assert cells_of(line) == expected
    dropped = [h for h in header if h not in [c.replace("prec@", "precision@") for c in shown]]
    assert dropped[0] == "f1@10"  # the caller's drop order first
    note = next(n for n in t.notes if "left out to fit 80 columns" in n)
    assert note.startswith(f"{len(dropped)} columns left out") and "--wide shows all" in note
    assert all(name in note for name in dropped)
    assert "prec = precision" in t.notes
    na_note = next(n for n in t.notes if n.startswith("n/a stands for"))
    assert "rating-only (models model-0, model-2, model-4)" in na_note
    assert "rank-only (models model-1, model-3, model-5)" in na_note


def test_wide_shows_every_column_as_given():
    header, rows = wide_rows()
    t = tables.fit(header, rows, width=None, na={"rating-only", "rank-only"})
    assert t.columns == header and t.notes == []
    assert cells_of(t.table_lines()[1]) == rows[0]


def test_columns_na_for_every_row_are_left_out_and_said():
    header = ["model", "rmse", "mae", "ndcg@10"]
    rows = [["popularity", "rank-only", "rank-only", "0.1708"], ["als", "rank-only", "rank-only", "0.3563"]]
    t = tables.fit(header, rows, width=200, na={"rank-only"}, row_noun="model")
    assert t.columns == ["model", "ndcg@10"]
    assert t.notes == ["left out rmse, mae: rank-only for every model"]
    assert tables.fit(header, rows, width=None, na={"rank-only"}).columns == header


def test_rich_table_on_a_terminal_fits_and_shows_numbers_whole(capsys):
    header, rows = wide_rows()
    t = tables.fit(header, rows, width=80, gap=tables.RICH_GAP, na={"rating-only", "rank-only"})
    t.print(rich=True)
    out = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)  # rich's own styling
    assert all(len(line) <= 80 for line in out.splitlines()), out
    assert "\u2026" not in out
    for row in rows:
        for cell in row[1:]:
            if re.fullmatch(r"\d\.\d{4}", cell) and header[row.index(cell)] in t.columns:
                assert cell in out


def test_a_long_label_wraps_instead_of_overflowing():
    label = "hybrid(loss=rating, id_dropout=0.5, factors=64, epochs=30, lr=0.01, reg=0.001)"
    t = tables.fit(["model", "rmse", "mae"], [[label, "0.9123", "0.7201"]], width=40)
    lines = t.text().splitlines()
    assert all(len(line) <= 40 for line in lines)
    assert "0.9123" in lines[1] and "0.7201" in lines[1]
    assert "".join(line[:len(line) - 16].strip() for line in lines[1:]).replace(" ", "") \
        .startswith("hybrid(loss=rating,")  # fmt: skip


def test_output_width_is_80_off_a_terminal_and_none_with_wide():
    assert tables.output_width() == 80  # pytest captures stdout: not a terminal
    assert tables.output_width(wide=True) is None


# -- the CLI ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ratings_csv(tmp_path_factory):
    inter, _, _, _ = synthetic(n_users=50, n_items=30)
    path = tmp_path_factory.mktemp("tables") / "ratings.csv"
    inter.to_csv(path, index=False)
    return path


def table_block(output: str) -> list[str]:
    lines = output.splitlines()
    return lines[: next(n for n, line in enumerate(lines) if line.startswith("split:"))]


def test_evaluate_table_fits_80_columns_with_numbers_intact(ratings_csv):
    models = "global-mean,bias,popularity,random,mf"
    run = CliRunner().invoke(cli, ["evaluate", str(ratings_csv), "--models", models, "--k", "5"])
    assert run.exit_code == 0, run.output
    block = table_block(run.output)
    assert all(len(line) <= 80 for line in block), "\n".join(block)
    assert not any("0.\u2026" in line or "\u2026" in line for line in block)
    assert any("left out to fit 80 columns" in line for line in block)
    js = CliRunner().invoke(cli, ["evaluate", str(ratings_csv), "--models", models, "--k", "5", "--json"])
    payload = __import__("json").loads(js.output)
    header = block[1].split()
    assert header[0] == "model" and "rmse" in header and "ndcg@5" in header
    for line in block[2:7]:
        model, *cells = line.split()
        for col, cell in zip(header[1:], cells, strict=False):
            metric = {"prec@5": "precision@5", "rec@5": "recall@5", "hit@5": "hitrate@5",
                      "cov@5": "coverage@5"}.get(col, col)  # fmt: skip
            value = payload["models"][model]["metrics"].get(metric)
            if value is not None:
                assert cell == f"{value:.4f}", (model, col)

    wide = CliRunner().invoke(cli, ["evaluate", str(ratings_csv), "--models", models, "--k", "5", "--wide"])
    assert wide.exit_code == 0, wide.output
    assert table_block(wide.output)[1].split() == ["model", *payload["metrics"], "fit", "s"]
    assert "left out" not in wide.output


def test_evaluate_leaves_out_rating_columns_when_no_model_predicts_ratings(ratings_csv):
    run = CliRunner().invoke(cli, ["evaluate", str(ratings_csv), "--models", "popularity,random"])
    assert run.exit_code == 0, run.output
    header = table_block(run.output)[1].split()
    assert "rmse" not in header and "mae" not in header and "ndcg@10" in header
    assert "left out rmse, mae: rank-only for every model" in run.output


# -- the chart --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def result():
    inter, feats, _, _ = synthetic(n_users=60, n_items=40)
    data = RecData("synthetic-test", inter, rating_scale=(1.0, 5.0))
    return evaluate(data, feats, ["global-mean", "bias", "popularity", "random", "content"],
                    "random", k=5)  # fmt: skip


def test_chart_is_a_grid_of_panels_one_per_metric_with_a_value(result, tmp_path):
    from PIL import Image

    fig = result_figure(result)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    metrics = [m for m in result.table.columns if result.table[m].notna().any()]
    assert len(panels) == len(metrics) == 10
    rows = {round(ax.get_position().y0, 3) for ax in panels}
    assert len(rows) == 3  # 4 + 4 + 2, not one strip of ten
    path = plot_result(result, tmp_path / "chart.png", title="t")
    width, height = Image.open(path).size
    assert width <= 1800 and width / height < 4
    # models without a value are left out of a panel, not drawn as zero
    rmse = next(ax for ax in panels if ax.get_title().startswith("rmse"))
    shown = {t.get_text() for t in rmse.get_yticklabels()}
    assert shown == {"global-mean", "bias"} and "popularity" in rmse.get_xlabel()


def test_chart_marks_chance_and_lower_is_better(result):
    fig = result_figure(result)
    by_metric = {ax.get_title().split(" ")[0]: ax for ax in fig.axes if ax.get_visible()}
    ndcg = by_metric["ndcg@5"]
    chance = [line for line in ndcg.get_lines() if line.get_label() == "chance"]
    assert len(chance) == 1 and chance[0].get_linestyle() == "--"
    assert chance[0].get_xdata()[0] == pytest.approx(result.info["ranking"]["expected_random_ndcg@5"])
    # no exact level for recall: the random model's score
    recall = [line for line in by_metric["recall@5"].get_lines() if line.get_label() == "chance"]
    assert recall[0].get_xdata()[0] == pytest.approx(result.table.loc["random", "recall@5"])
    assert "lower is better" in by_metric["rmse"].get_title()
    assert "lower is better" in by_metric["mae"].get_title()
    assert "higher is better" in ndcg.get_title()
    # best on top: the smallest RMSE, the largest NDCG
    rmse = by_metric["rmse"]
    top = min(rmse.get_yticks(), key=abs)
    best = result.table["rmse"].idxmin()
    assert [t.get_text() for t in rmse.get_yticklabels()][list(rmse.get_yticks()).index(top)] == best
    assert any(t.get_text() for t in fig.legends[0].get_texts() if t.get_text() == "chance")


def test_lower_is_better_follows_the_metric_classes():
    assert lower_is_better("rmse") and lower_is_better("mae")
    assert not any(lower_is_better(m) for m in ("ndcg@10", "coverage@10", "mrr", "recall@20"))


def test_chart_refuses_a_result_with_nothing_to_draw():
    from recfeat.errors import DataError

    empty = EvaluationResult(pd.DataFrame({"rmse": [np.nan]}, index=["popularity"]), na={},
                             notes={}, fit_seconds={"popularity": 0.1}, options={}, info={})  # fmt: skip
    with pytest.raises(DataError, match="nothing to plot"):
        result_figure(empty)


# -- the other commands' tables -----------------------------------------------------------------
def test_bench_report_fits_80_columns_and_wide_shows_every_column(capsys):
    import json
    from pathlib import Path

    from recfeat.cli.bench_cmd import _show

    results = json.loads((Path(__file__).parents[1] / "benchmarks/results/throughput.json").read_text())
    results.setdefault("failed", [])
    _show(Path("report"), results)
    out = capsys.readouterr().out
    assert all(len(line) <= 80 for line in out.splitlines())
    words = " ".join(out.split())  # footnotes wrap at 80 too
    assert "left out to fit 80 columns" in words and "--wide or results.md shows all" in words
    _show(Path("report"), results, wide=True)
    wide = capsys.readouterr().out
    assert "left out" not in wide and "x vs st-torch" in wide


def test_export_table_fits_80_columns_and_names_the_left_out_columns(capsys):
    from recfeat.cli.export_cmd import print_table
    from recfeat.exporters.validate import StepValidation

    rows = [StepValidation(step="quantize dynamic-int8", file="model_qint8_avx512_vnni.onnx",
                           precision="int8", n_texts=64, min_cosine=0.99, passed=False,
                           cosine_mean=0.987654, cosine_min=0.912345, cosine_p1=0.934567,
                           max_abs_diff=0.0123)]  # fmt: skip
    print_table(rows)
    out = capsys.readouterr().out
    assert all(len(line) <= 80 for line in out.splitlines()), out
    assert "0.987654" in out and "0.912345" in out and "NO" in out
    assert "2 columns left out to fit 80 columns (file, min): --wide shows all" in out
    print_table(rows, wide=True)
    assert "model_qint8_avx512_vnni.onnx" in capsys.readouterr().out


def test_explain_line_cuts_a_long_item_id_never_the_score():
    from recfeat.cli.explain_cmd import explanation_lines

    expl = {"user": "u1", "model": "content", "history_size": 3, "notes": [],
            "items": [{"rank": 1, "item": "B" * 90, "score": 0.123456,
                       "history": [{"item": f"item{i}", "contribution": 0.25} for i in range(12)]}]}  # fmt: skip
    rank, cited = explanation_lines(expl)[1:]
    assert len(rank) <= 80 and rank.endswith("...  0.1235")
    assert len(cited) <= 80 and re.search(r"item\d \+0\.25\.\.\.$", cited)
