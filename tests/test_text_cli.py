"""``recfeat clean`` and ``recfeat tokenize`` through click's CliRunner, bad input included."""

from __future__ import annotations

import csv
import gzip
import itertools
import json

import pytest
from click.testing import CliRunner

from recfeat.cli.main import cli


@pytest.fixture()
def run():
    runner = CliRunner()

    def invoke(*args, input=None, env=None):
        return runner.invoke(cli, [str(a) for a in args], input=input, env=env, catch_exceptions=False)

    return invoke


def assert_one_line_error(result, code: int, *fragments: str):
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


# -- clean ------------------------------------------------------------------------------------------


def test_clean_stdin_text_with_default_chain(run):
    result = run("clean", input="<p>Ｇｒｅａｔ&amp;loud</p>\n\u200bsecond   line \n")
    assert result.exit_code == 0, result.output
    assert result.stdout == "Great&loud\nsecond line\n"


def test_clean_text_file_keeps_one_line_per_text(run, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("a&#10;b\nc\n\nlast-without-newline", encoding="utf-8")
    result = run("clean", src, "--cleaners", "html")
    assert result.stdout.splitlines() == ["a b", "c", "", "last-without-newline"]


def test_clean_csv_keeps_other_columns(run, tmp_path):
    src = tmp_path / "reviews.csv"
    rows = [["id", "review", "stars"], ["1", "<b>Good</b>,  cheap", "5"], ["2", "multi\nline", "3"]]
    with open(src, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    out = tmp_path / "out.csv"
    result = run("clean", src, "--column", "review", "--out", out)
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and "cleaned 2 texts" in result.stderr
    with open(out, newline="", encoding="utf-8") as fh:
        assert list(csv.reader(fh)) == [["id", "review", "stars"], ["1", "Good, cheap", "5"], ["2", "multi line", "3"]]


def test_clean_jsonl_keeps_other_fields_and_nulls(run, tmp_path):
    src = tmp_path / "r.jsonl"
    records = [
        {"id": 1, "text": "这把吉他的音色非常好，the sound is great 👍", "meta": {"a": [1]}},
        {"id": 2, "text": None},
    ]
    src.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n\n", encoding="utf-8")
    result = run("clean", src, "--cleaners", "emoji,stopwords,whitespace")
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert out == [
        {"id": 1, "text": "这把吉他的音色非常好，sound great", "meta": {"a": [1]}},
        {"id": 2, "text": None},
    ]


def test_clean_gzipped_amazon_reviews(run, tmp_path, musical_instruments):
    # the real file is gzip'd JSON lines; take 1,500 rows so more than one chunk is processed
    src = tmp_path / "mi.json.gz"
    with gzip.open(musical_instruments, "rb") as fh, gzip.open(src, "wb") as out:
        for i, line in enumerate(fh):
            if i == 1500:
                break
            out.write(line)
    result = run("clean", src, "--column", "reviewText", "--cleaners", "lowercase", "--out", tmp_path / "o.jsonl")
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "o.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1500
    first = json.loads(lines[0])
    assert first["reviewText"] == first["reviewText"].lower() and first["asin"] == "1384719342"


def test_clean_chain_from_config(run, tmp_path):
    config = tmp_path / "pipeline.toml"
    config.write_text('cleaners = [{ use = "truncate", max_chars = 9 }, "lowercase"]\n', encoding="utf-8")
    result = run("clean", "--config", config, input="Hello World Again\n")
    assert result.stdout == "hello\n"
    bad = tmp_path / "bad.toml"
    bad.write_text('cleaners = [{ use = "truncate", max_char = 9 }]\n', encoding="utf-8")
    assert_one_line_error(run("clean", "--config", bad, input="x\n"), 2, "max_char")


def test_clean_usage_errors(run, tmp_path):
    assert_one_line_error(run("clean", "--cleaners", "html,whitespase", input="x\n"), 2, "Did you mean 'whitespace'")
    config = tmp_path / "c.toml"
    config.write_text("cleaners = []\n")
    assert_one_line_error(run("clean", "--cleaners", "html", "--config", config, input="x\n"), 2, "not both")
    assert_one_line_error(run("clean", "--column", "text", input="x\n"), 2, "--format csv")
    assert_one_line_error(run("clean", "--encoding", "klingon", input="x\n"), 2, "unknown encoding")
    assert_one_line_error(run("clean", tmp_path / "missing.txt"), 2, "missing.txt does not exist")


def test_clean_missing_column_lists_columns(run, tmp_path):
    src = tmp_path / "a.csv"
    src.write_text("id,review\n1,good\n", encoding="utf-8")
    assert_one_line_error(run("clean", src, "--column", "reveiw"), 2, "Columns found: id, review", "Did you mean 'review'")
    assert_one_line_error(run("clean", src), 2, "pass --column NAME", "id, review")
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text('{"reviewText": "x", "asin": "1"}\n', encoding="utf-8")
    assert_one_line_error(run("clean", jsonl, "--column", "text"), 2, "reviewText, asin")


def test_clean_malformed_rows(run, tmp_path):
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text('{"text": "ok"}\n{"text": broken}\n', encoding="utf-8")
    assert_one_line_error(run("clean", jsonl), 1, "line 2", "not valid JSON")
    jsonl.write_text('{"text": "ok"}\n{"other": 1}\n', encoding="utf-8")
    assert_one_line_error(run("clean", jsonl), 1, "line 2", "no field 'text'")
    jsonl.write_text('{"text": 5}\n', encoding="utf-8")
    assert_one_line_error(run("clean", jsonl), 1, "is a int")
    src = tmp_path / "a.csv"
    src.write_text("id,text\n1,ok\n2\n", encoding="utf-8")
    assert_one_line_error(run("clean", src), 1, "line 3", "header has 2")


def test_undecodable_bytes_leave_no_half_written_output(run, tmp_path):
    src = tmp_path / "latin.txt"
    # 1,500 good lines (more than one chunk is written), then a Latin-1 byte on line 1501
    src.write_bytes(b"good line\n" * 1500 + b"caf\xe9 au lait\n" + b"more\n")
    out = tmp_path / "out.txt"
    out.write_text("previous result\n", encoding="utf-8")
    result = run("clean", src, "--out", out)
    assert_one_line_error(result, 1, str(src), "line 1501", "--encoding")
    assert out.read_text(encoding="utf-8") == "previous result\n"  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latin.txt", "out.txt"]  # no temp file
    fixed = run("clean", src, "--encoding", "latin-1", "--out", out)
    assert fixed.exit_code == 0, fixed.output
    assert out.read_text(encoding="utf-8").splitlines()[1500] == "café au lait"


def test_clean_strips_utf8_bom(run):
    result = run("clean", "--cleaners", "", input="\ufeffid,text\n1,x\n".encode())
    assert result.stdout == "id,text\n1,x\n"


def test_clean_shows_progress_when_asked(run, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("text\n" * 2500, encoding="utf-8")
    result = run("clean", src, env={"RECFEAT_PROGRESS": "1"})
    assert result.exit_code == 0, result.output
    assert "cleaning (html" in result.stderr and "items/s" in result.stderr
    assert result.stdout == "text\n" * 2500


# -- tokenize ------------------------------------------------------------------------------------------


def test_tokenize_json_lines_and_summary(run, minilm_path):
    text = "the guitar strings sound great " * 10  # 50 words
    result = run("tokenize", "--encoder", minilm_path, "--max-length", 16, "--json", input=f"{text}\nshort\n")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["row"] for r in records] == [0, 1]
    long, short = records
    assert long["n_kept"] == len(long["ids"]) == 16
    assert long["n_tokens"] == 52 and long["n_dropped"] == 36  # 50 words + [CLS] [SEP]
    assert short == {"row": 1, "n_tokens": 3, "n_kept": 3, "n_dropped": 0, "ids": [101, 2460, 102]}
    assert result.stderr.strip() == (
        "texts: 2, tokens: 55, truncated texts: 1, tokens dropped: 36 (max_length=16)"
    )


def test_tokenize_plain_output_with_tokens(run, tmp_path, minilm_path):
    src = tmp_path / "r.csv"
    src.write_text("id,text\n1,Great amp\n", encoding="utf-8")
    result = run("tokenize", src, "--encoder", minilm_path, "--show-tokens")
    assert result.exit_code == 0, result.output
    assert result.stdout == "4\t0\t[CLS] great amp [SEP]\n"


def test_tokenize_real_reviews_counts_match_the_library(run, tmp_path, musical_instruments, minilm_path):
    from recfeat import get_registry

    src = tmp_path / "mi.jsonl"
    texts = []
    with gzip.open(musical_instruments, "rt", encoding="utf-8") as fh, open(src, "w", encoding="utf-8") as out:
        for line in itertools.islice(fh, 200):
            out.write(line)
            texts.append(json.loads(line)["reviewText"])
    result = run("tokenize", src, "--column", "reviewText", "--encoder", minilm_path, "--json")
    assert result.exit_code == 0, result.output
    batch = get_registry("tokenizer").create("hf", model=str(minilm_path)).tokenize(texts)
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["n_tokens"] for r in records] == batch.n_tokens.tolist()
    assert f"tokens dropped: {int(batch.n_dropped.sum())}" in result.stderr


def test_tokenize_errors(run, minilm_path):
    assert_one_line_error(run("tokenize", "--tokenizer", "tfidf", input="x\n"), 2, "not a tokenizer")
    assert_one_line_error(run("tokenize", "--tokenizer", "hff", input="x\n"), 2, "Did you mean 'hf'")
    assert_one_line_error(run("tokenize", "--encoder", "nobody/nothing-here", input="x\n"), 1, "cannot load model")
    assert_one_line_error(
        run("tokenize", "--encoder", minilm_path, "--max-length", 9999, input="x\n"), 2, "max_length <= 512"
    )


def test_tokenize_with_a_trained_bpe_via_options(run, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the guitar strings sound great\n" * 50 + "cheap amp, loud hum\n" * 50, encoding="utf-8")
    result = run(
        "tokenize", "--tokenizer", "gpt2-bpe", "-o", f"corpus={corpus}", "-o", "vocab_size=300",
        "-o", f"cache_dir={tmp_path / 'cache'}", "--json", input="the guitar\n",
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["n_dropped"] == 0 and 1 <= record["n_kept"] < len("the guitar")
    assert_one_line_error(run("tokenize", "-o", "novalue", input="x\n"), 2, "not KEY=VALUE")
    assert_one_line_error(run("tokenize", "--tokenizer", "gpt2-bpe", "-o", f"corpus={corpus}", "--encoder", "x", input="x\n"), 2, "unknown option 'model'")
