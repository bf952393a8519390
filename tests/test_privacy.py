"""Privacy by default (docs/privacy.md): the ``pii`` cleaner masks personal data and leaves
the numbers reviews are full of alone; it is in the default chain of ``extract``, ``serve``
and ``clean`` and ``--keep-pii`` / ``keep_pii=True`` takes it out; run records count what
it masked, never the values; no file ``extract`` writes (vector cache included) holds a
review's text; ``serve`` logs no request text, even at DEBUG and on its error paths."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import assert_one_line_error

import recfeat
from recfeat import get_registry
from recfeat.cli.main import cli
from recfeat.components.encoder import Encoder
from recfeat.errors import OptionError, UsageError
from recfeat.extraction.cleaning import DEFAULT_CLEANERS, build_cleaner_chain, with_keep_pii

TESTS = Path(__file__).resolve().parent
PLANTED = "zq-planted-secret-4711"
EMAIL = "zq.owner@example.com"


def pii(text: str, **options) -> tuple[str, dict[str, int]]:
    return get_registry("cleaner").create("pii", **options).mask_text(text)


# -- the cleaner: what it masks ----------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, masked, kind",
    [
        ("mail me at john.doe+amp@example.co.uk!", "mail me at [EMAIL]!", "email"),
        ("<ffsalsa@yahoo.com>", "<[EMAIL]>", "email"),
        ("see https://example.com/x?y=1.", "see [URL].", "url"),
        ("the (www.example.com/amp) one", "the ([URL]) one", "url"),
        ("call +44 20 7946 0958 now", "call [PHONE] now", "phone"),
        ("+1 (415) 555-2671", "[PHONE]", "phone"),
        ("+4915112345678", "[PHONE]", "phone"),
        ("+49 (0)30 1234567", "[PHONE]", "phone"),
        ("0049 30 1234567", "[PHONE]", "phone"),
        ("Ph: (415) 555-2671 Em:", "Ph: [PHONE] Em:", "phone"),
        ("tel:415-555-2671", "tel:[PHONE]", "phone"),
        ("415-555-2671", "[PHONE]", "phone"),
        ("415.555.2671", "[PHONE]", "phone"),
        ("1-800-555-0199.", "[PHONE].", "phone"),
        ("030 1234567", "[PHONE]", "phone"),
        ("06 12 34 56 78", "[PHONE]", "phone"),
        ("020 7946 0958", "[PHONE]", "phone"),
        ("07700 900123", "[PHONE]", "phone"),
        ("089/1234567", "[PHONE]", "phone"),
        ("card 4111 1111 1111 1111 ok", "card [CARD] ok", "card"),
        ("4111-1111-1111-1111", "[CARD]", "card"),
        ("card:4111111111111111", "card:[CARD]", "card"),
        ("amex 3782 822463 10005", "amex [CARD]", "card"),
        ("5500 0000 0000 0004.", "[CARD].", "card"),
        ("4111 1111 1111 1111 5 strings", "[CARD] 5 strings", "card"),  # a longer run
        ("follow @guitar_guy on insta", "follow [HANDLE] on insta", "handle"),
        ("Twitter: @NewAirUSA.", "Twitter: [HANDLE].", "handle"),
        ("(@j.doe)", "([HANDLE])", "handle"),
    ],
)
def test_pii_masks(raw, masked, kind):
    assert pii(raw) == (masked, {kind: 1})


@pytest.mark.parametrize(
    "text",
    [
        "$19.99", "only 19.99 USD", "bought 2014-05-03", "on 05/03/2014", "05/03/2014 10:30",
        "03.05.2014", "01.05.2014-03.05.2014", "since 1998", "1998 - 2004", "SM58", "XLR-3",
        "model 5150-III", "Fender 099-0502-000 tools", "version 1.2.3", "v2.0.1.1234", '1/4"',
        "1/4 to 1/8", "6.35mm", "3.5mm jack", "5/5", "4.5 stars", "10/10 would buy",
        "C@t", "I'd give it a 10", "ISBN 978-0-306-40615-7", "9780306406157", "0306406152",
        "order 1234567890123456", "4111 1111 1111 1112", "112-1234567-1234567",
        "20-20,000 Hz", "100-240V 50/60Hz", "+5 dB", "+12V", "@5pm", "@ $20", "1,000,000",
        "0.5 0.75 1.00", "10:30 - 11:45", "2x 10 ft cables", "12 34 56 78", "me@", "a @ b",
    ],
)  # fmt: skip
def test_pii_leaves_near_misses_alone(text):
    assert pii(text) == (text, {})


def test_pii_counts_each_kind_and_every_hit():
    text = (f"{EMAIL}, a@b.org, https://x.io, +44 20 7946 0958, 4111 1111 1111 1111, "
            "@someone and @other")  # fmt: skip
    out, counts = pii(text)
    assert counts == {"email": 2, "url": 1, "phone": 1, "card": 1, "handle": 2}
    assert out == "[EMAIL], [EMAIL], [URL], [PHONE], [CARD], [HANDLE] and [HANDLE]"


def test_pii_kinds_option_and_its_checks():
    text = f"{EMAIL} or +44 20 7946 0958"
    assert pii(text, kinds=["phone"]) == (f"{EMAIL} or [PHONE]", {"phone": 1})
    chain = build_cleaner_chain([{"use": "pii", "kinds": ["phone", "email"]}])
    assert chain.spec() == [{"use": "pii", "kinds": ["email", "phone"]}]  # canonical order
    with pytest.raises(OptionError, match="unknown kind.*'names'.*choose from url, email"):
        get_registry("cleaner").create("pii", kinds=["email", "names"])
    with pytest.raises(OptionError, match="leave pii out"):
        get_registry("cleaner").create("pii", kinds=[])


def test_pii_and_mask_urls_share_one_url_and_email_masking():
    text = "docs at https://example.com/a(b)c), write to x@example.com."
    by_pii = pii(text, kinds=["url", "email"])
    urls = get_registry("cleaner").create("mask-urls")
    assert by_pii == urls.mask_text(text) == ("docs at [URL]), write to [EMAIL].",
                                              {"url": 1, "email": 1})  # fmt: skip


def test_texts_with_no_marker_pass_through_unchanged():
    cleaner = get_registry("cleaner").create("pii")
    text = "Great tone, 5 stars. The 1/4 inch jack fits; worth $29.99 in 2014." * 20
    assert cleaner.mask_text(text) == (text, {})
    assert cleaner.mask_text("") == ("", {})


# -- the default chain, and turning it off ------------------------------------------------------


def test_pii_is_in_the_default_chain_after_nfkc():
    assert DEFAULT_CLEANERS.index("pii") == DEFAULT_CLEANERS.index("nfkc") + 1
    chain = build_cleaner_chain()
    assert chain.masks == ("url", "email", "card", "phone", "handle")
    # full-width digits and @ are plain by the time pii looks (nfkc runs first)
    assert chain.clean_text("<p>ｍａｉｌ ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ</p>") == "mail [EMAIL]"


def test_keep_pii_takes_it_out_and_contradicts_a_chain_that_names_it():
    assert with_keep_pii(None, False) is None
    assert with_keep_pii(None, True) == ["html", "control-chars", "nfkc", "whitespace"]
    assert with_keep_pii(["html"], True) == ["html"]
    for named in ("html,pii", ["mask-pii"], [{"use": "pii", "kinds": ["email"]}],
                  build_cleaner_chain("pii")):  # fmt: skip
        with pytest.raises(UsageError, match="--keep-pii asks to keep personal data.*include 'pii'"):
            with_keep_pii(named, True)


def test_settings_and_api_take_keep_pii():
    from recfeat.api import cleaner_chain, extract_settings, serve_settings

    names = ["html", "control-chars", "nfkc", "whitespace"]
    assert extract_settings(data="sample").cleaners is None  # the default chain, pii in it
    assert extract_settings(data="sample", keep_pii=True).cleaners == names
    assert serve_settings(keep_pii=True).cleaners == names
    assert serve_settings(cleaners="none", keep_pii=True).cleaners == []
    assert "pii" in cleaner_chain().names and "pii" not in cleaner_chain(keep_pii=True).names
    with pytest.raises(UsageError, match="include 'pii'"):
        serve_settings(cleaners="html,pii", keep_pii=True)
    with pytest.raises(UsageError, match="--keep-pii must be True or False, got 'yes'"):
        extract_settings(data="sample", keep_pii="yes")
    with pytest.raises(UsageError, match="keep_pii must be True or False, got 1"):
        recfeat.extract(recfeat.load_dataset(None, format="synthetic-books"), keep_pii=1)


def test_clean_command_masks_by_default_and_keep_pii_keeps(tmp_path):
    src = tmp_path / "texts.txt"
    src.write_text(f"write to {EMAIL} today\n")
    default = CliRunner().invoke(cli, ["clean", str(src)])
    kept = CliRunner().invoke(cli, ["clean", str(src), "--keep-pii"])
    assert default.exit_code == 0 and kept.exit_code == 0, default.output + kept.output
    assert default.output.strip() == "write to [EMAIL] today"
    assert kept.output.strip() == f"write to {EMAIL} today"


# -- extraction: counts in the run record, no text in any file ----------------------------------

REVIEWS = [
    ("ann", "b1", 5, f"Great strings {PLANTED}! Mail me at {EMAIL} or call +44 20 7946 0958."),
    ("bob", "b2", 4, "Solid stand for $19.99, bought 2014-05-03, 5/5."),
    ("cat", "b1", 3, f"Write to {EMAIL} or ffsalsa@yahoo.com, follow @zqplanted."),
    ("dan", "b3", 2, f"Write to {EMAIL} or ffsalsa@yahoo.com, follow @zqplanted."),  # same text
    ("eve", "b2", 5, "Card 4111 1111 1111 1111 charged twice; order 112-1234567-1234567."),
]
COUNTS = {"url": 0, "email": 5, "card": 1, "phone": 1, "handle": 2}  # over rows


@pytest.fixture()
def reviews_csv(tmp_path, monkeypatch):
    monkeypatch.setenv("RECFEAT_CACHE_DIR", str(tmp_path / "default-cache"))
    import csv

    path = tmp_path / "data" / "reviews.csv"
    path.parent.mkdir()
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["user", "item", "rating", "review"])
        writer.writerows(REVIEWS)
    return path


@pytest.fixture(scope="module")
def minilm():
    return recfeat.encoder("minilm", max_length=32)


@pytest.mark.parametrize("stream", [True, False])
def test_run_record_counts_masked_values_per_row_never_the_values(reviews_csv, tmp_path, minilm,
                                                                  stream):  # fmt: skip
    out = tmp_path / "out" / "reviews.parquet"
    result = recfeat.extract_file(reviews_csv, out, encoder=minilm, cache=False, stream=stream,
                                  batch_rows=1)  # fmt: skip
    assert result.run["masked"] == COUNTS
    assert result.run.get("engine") == ("stream" if stream else None)
    record = json.loads((tmp_path / "out" / "reviews.run.json").read_text())
    assert record["masked"] == COUNTS
    kept = recfeat.extract_file(reviews_csv, tmp_path / "kept.parquet", encoder=minilm,
                                cache=False, stream=stream, keep_pii=True)  # fmt: skip
    assert kept.run["masked"] is None  # nothing was looked for
    assert [c["use"] for c in kept.manifest["cleaners"]] == ["html", "control-chars", "nfkc",
                                                             "whitespace"]  # fmt: skip


def test_python_extract_masks_by_default_and_keeps_with_keep_pii(reviews_csv, minilm):
    data = recfeat.load_dataset(reviews_csv)
    masked = recfeat.extract(data, encoder=minilm, cache=False)
    kept = recfeat.extract(data, encoder=minilm, cache=False, keep_pii=True)
    assert "pii" in [c["use"] for c in masked.manifest["cleaners"]]
    assert "pii" not in [c["use"] for c in kept.manifest["cleaners"]]
    assert masked.run["masked"] == COUNTS and kept.run["masked"] is None
    # the texts with personal data differ (masked before encoding); the others do not
    same = np.isclose((masked.vectors * kept.vectors).sum(axis=1), 1.0, atol=1e-5)
    assert same.tolist() == [False, True, False, False, False]


def readable_views(path: Path) -> list[bytes]:
    """The bytes of ``path`` and of everything stored compressed inside it (Parquet
    columns and metadata, zip members, SQLite rows): a planted string cannot hide."""
    views = [path.read_bytes()]
    name = path.name
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        views.append(repr(table.schema.metadata).encode())
        views.append(table.to_pandas().to_csv().encode())
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            views += [zf.read(member) for member in zf.namelist()]
    elif name.endswith(".sqlite"):
        with sqlite3.connect(path) as db:
            views += [line.encode() for line in db.iterdump()]
    return views


def files_under(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders if folder.is_dir() for p in folder.rglob("*")
                  if p.is_file())  # fmt: skip


@pytest.mark.parametrize("keep_pii", [False, True])
def test_no_file_extract_writes_holds_a_review_text(reviews_csv, tmp_path, keep_pii):
    """Review, item and user level, streamed and loaded, token features and the vector
    cache: with pii masked or kept, no file holds the planted string or the address."""
    cache = tmp_path / "cache"
    out = tmp_path / "out"
    runs = [
        ["--level", "review"],  # streamed
        ["--level", "review", "--token-features", "tfidf"],  # loaded (token features)
        ["--level", "item", "--no-stream"],
        ["--level", "user"],
    ]
    for i, args in enumerate(runs):
        result = CliRunner().invoke(cli, [
            "extract", str(reviews_csv), "--out", str(out / f"run{i}.parquet"), "--cache",
            str(cache), "--max-length", "32", *args, *(["--keep-pii"] if keep_pii else []),
        ])  # fmt: skip
        assert result.exit_code == 0, result.output
    # the vector cache, and recfeat's default cache folder (weight hashes)
    written = files_under(out, cache, tmp_path / "default-cache")
    assert {p.suffix for p in written} >= {".parquet", ".json", ".npz", ".sqlite"}
    assert len([p for p in written if p.name.endswith(".run.json")]) == len(runs)
    with sqlite3.connect(cache / "vectors.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0] >= 4  # cache was used
    for path in written:
        for view in readable_views(path):
            for secret in (PLANTED, EMAIL, "ffsalsa", "4111 1111", "7946 0958"):
                assert secret.encode() not in view, f"{secret!r} in {path}"


def test_ray_counts_masked_values_over_its_shards_and_writes_no_text(ray_cluster, reviews_csv,
                                                                     tmp_path):  # fmt: skip
    pytest.importorskip("ray")
    out = tmp_path / "ray-out"
    result = CliRunner().invoke(cli, [
        "extract", str(reviews_csv), "--ray", "--ray-address", ray_cluster, "--cpus-per-actor",
        "0.5", "--batch-rows", "2", "--max-length", "32", "--out", f"{out}/",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads((out / "run.json").read_text())
    assert record["shards"] == 3 and record["masked"] == COUNTS
    for path in files_under(out):
        for view in readable_views(path):
            assert PLANTED.encode() not in view and EMAIL.encode() not in view, path


def test_the_vector_cache_keys_are_hashes_of_the_cleaned_text(reviews_csv, tmp_path, minilm):
    from recfeat.extraction.cache import fingerprint_digest, text_keys

    recfeat.extract_file(reviews_csv, tmp_path / "r.parquet", encoder=minilm, cache=tmp_path / "c")
    with sqlite3.connect(tmp_path / "c" / "vectors.sqlite") as db:
        keys = {bytes(k) for (k,) in db.execute("SELECT key FROM vectors")}
    cleaned = build_cleaner_chain().clean([text for *_, text in REVIEWS])
    assert keys == set(text_keys(cleaned, fingerprint_digest(minilm.fingerprint())))
    assert all(len(k) == 32 for k in keys)


# -- serve: no request text in logs, counts in metrics -----------------------------------------

DIM = 8
REFUSE = "REFUSE-ME"


class QuotingFakeEncoder(Encoder):
    """A vector from a hash of the text; a text holding ``REFUSE`` fails the call with an
    error that QUOTES it, as some tokenizers do: the server must not log that message."""

    name = "quoting-fake"
    backend = "fake"

    def __init__(self, max_length: int = 128):
        self.max_length = max_length

    @property
    def dim(self) -> int:
        return DIM

    def fingerprint(self):
        return {"encoder": self.name, "backend": self.backend, "max_length": self.max_length,
                "pooling": "mean", "normalize": True, "precision": "fp32"}  # fmt: skip

    def encode(self, texts, per_text: bool = False):
        texts = list(texts)
        for text in texts:
            if REFUSE in text:
                raise ValueError(f"cannot tokenize {text!r}")
        self.last_stats = {"n_kept": np.array([min(len(t) // 4 + 2, self.max_length)
                                               for t in texts], dtype=np.int64),
                           "n_dropped": np.zeros(len(texts), np.int64), "tokenize_seconds": 0.0}  # fmt: skip
        out = [np.random.default_rng(int.from_bytes(hashlib.sha256(t.encode()).digest()[:8],
                                                    "little")).standard_normal(DIM)
               for t in texts]  # fmt: skip
        return np.asarray(out, dtype=np.float32).reshape(len(texts), DIM)


def register_fake() -> None:
    registry = get_registry("encoder")
    if QuotingFakeEncoder.name not in registry:
        registry.register(QuotingFakeEncoder)


def debug_logging() -> None:
    """Everything at DEBUG to stderr: the root logger (recfeat, fastapi, starlette, asyncio)
    and uvicorn's own loggers, access log included (``recfeat serve`` runs at WARNING)."""
    import uvicorn

    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    original = uvicorn.Config.__init__

    def verbose(self, *args, **kwargs):
        kwargs.update(log_level="debug", access_log=True)
        original(self, *args, **kwargs)

    uvicorn.Config.__init__ = verbose


LAUNCH = (f"import sys; sys.path.insert(0, {str(TESTS)!r}); import test_privacy as t; "
          "t.register_fake(); t.debug_logging(); from recfeat.cli.main import cli; "
          "cli(prog_name='recfeat')")  # fmt: skip


@pytest.fixture(scope="module")
def verbose_server(tmp_path_factory):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("uvicorn")
    log = tmp_path_factory.mktemp("serve-log") / "server.log"
    env = {**os.environ, "RECFEAT_LOAD_PLUGINS": "", "RECFEAT_PROGRESS": "0"}
    env.pop("RECFEAT_API_KEY", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, "serve", "--encoder", "quoting-fake", "--port", "0",
         "--max-chars", "300"],
        stdout=subprocess.PIPE, stderr=log.open("w"), text=True, env=env,
    )  # fmt: skip
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    deadline = time.monotonic() + 120
    while not (url := next((m.group(1) for line in list(lines)
                            if (m := re.search(r"ready on (http://\S+)", line))), None)):  # fmt: skip
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"recfeat serve did not start: {log.read_text()}")
        time.sleep(0.05)
    client = httpx.Client(base_url=url, timeout=60)
    yield client, proc, log, lines
    client.close()
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_serve_logs_no_request_text_even_at_debug_and_on_errors(verbose_server):
    client, proc, log, stdout = verbose_server
    text = f"Great strings {PLANTED}, mail {EMAIL}"
    ok = [
        client.post("/v1/embeddings", json={"input": text}),
        client.post("/v1/embeddings", json={"input": [text, "another one"]}),
        client.post("/embed", json={"texts": [text]}),
        client.put("/items/i1", json={"text": f"item {PLANTED}"}),
        client.put("/items/i2", json={"text": "a plain item"}),
        client.post("/recommend", json={"history_texts": [text], "k": 2}),
    ]
    assert [r.status_code for r in ok] == [200] * len(ok), [r.text for r in ok]
    assert ok[-1].json()["source"] == "text-profile"
    bad = {
        422: [client.post("/embed", json={"texts": [text], PLANTED: 1}),
              client.post("/recommend", json={"history_texts": [text], "k": 0})],
        400: [client.post("/v1/embeddings", json={"input": [text, 5]}),
              client.post("/v1/embeddings", content=f'{{"input": "{text}'),
              client.post("/embed", content=f'{{"texts": ["{text} '.encode() + b'\xff"]}'),
              client.post("/embed", json={"texts": [text, "   "]})],
        413: [client.post("/v1/embeddings", json={"input": text + " x" * 300})],
        500: [client.post("/embed", json={"texts": [f"{REFUSE} {text}"]})],
    }  # fmt: skip
    for status, responses in bad.items():
        assert [r.status_code for r in responses] == [status] * len(responses), [
            r.text for r in responses]
    # the refused input's error goes back to its own client only
    assert PLANTED in bad[500][0].json()["error"]["message"]
    metrics = client.get("/metrics").text
    # 4 good requests, the one with an empty text and the refused one were cleaned
    assert re.search(r'recfeat_masked_values_total\{kind="email"\} 6\.0', metrics), metrics
    assert re.search(r'recfeat_masked_values_total\{kind="card"\} 0\.0', metrics), metrics
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0
    logged = log.read_text(encoding="utf-8", errors="replace") + "".join(stdout)
    # the capture works: uvicorn's access log and debug lines are there
    assert '"POST /v1/embeddings HTTP/1.1" 200' in logged and "DEBUG" in logged, logged[-3000:]
    assert '"POST /embed HTTP/1.1" 500' in logged
    for secret in (PLANTED, EMAIL, "zq.owner", "Great strings"):
        assert secret not in logged, f"{secret!r} logged:\n{logged[-3000:]}"
    assert PLANTED not in metrics and "zq.owner" not in metrics


def test_an_unexpected_route_error_is_logged_without_its_message(caplog):
    """The app's 500 handler answers and re-raises for the server to log (Starlette's
    design); the gate logs the type and stack instead, never the message."""
    pytest.importorskip("prometheus_client")
    from types import SimpleNamespace

    from recfeat.serve.metrics import Metrics
    from recfeat.serve.middleware import Gate
    from recfeat.serve.state import ServeSettings

    async def answered_then_raised(scope, receive, send):
        await receive()
        await send({"type": "http.response.start", "status": 500, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})
        raise KeyError(f"no such thing as {PLANTED}")

    async def raised(scope, receive, send):
        await receive()
        raise RuntimeError(f"bad input {PLANTED}") from ValueError(PLANTED)

    async def call(app) -> list[dict]:
        state = SimpleNamespace(settings=ServeSettings(), metrics=Metrics(), closing=False,
                                in_flight=0)  # fmt: skip
        sent, body = [], [{"type": "http.request", "body": b'{"texts": ["x"]}', "more_body": False}]

        async def receive():
            if body:
                return body.pop()
            await asyncio.sleep(3600)

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "path": "/embed", "raw_path": b"/embed", "headers": []}
        await Gate(app, state)(scope, receive, send)
        return sent

    with caplog.at_level(logging.DEBUG):
        first = asyncio.run(call(answered_then_raised))
        second = asyncio.run(call(raised))
    assert [m["status"] for m in first + second if m["type"] == "http.response.start"] == [500, 500]
    assert b"internal error RuntimeError" in second[-1]["body"] and PLANTED.encode() not in second[-1]["body"]
    messages = [r.getMessage() for r in caplog.records]
    assert any("internal error on /embed: KeyError" in m for m in messages), messages
    assert any("RuntimeError (raised while handling ValueError)" in m for m in messages), messages
    assert all(PLANTED not in m and PLANTED not in str(r.exc_info) for m, r in
               zip(messages, caplog.records, strict=True))  # fmt: skip


def test_the_serving_cache_keeps_hashes_not_texts():
    from recfeat.serve.cache import LRUCache

    cache = LRUCache(4, b"\x00" * 32)
    cache.put(f"text {PLANTED}", (np.zeros(2, np.float32), 3, 0))
    assert cache.get(f"text {PLANTED}") is not None and cache.get("other") is None
    keys = list(cache._data)
    assert all(isinstance(k, bytes) and len(k) == 32 for k in keys)
    assert PLANTED.encode() not in b"".join(keys)


# -- the command line --------------------------------------------------------------------------


def test_extract_keep_pii_flag_and_its_contradiction(reviews_csv, tmp_path):
    out = tmp_path / "kept.parquet"
    ok = CliRunner().invoke(cli, ["extract", str(reviews_csv), "--out", str(out), "--no-cache",
                                  "--max-length", "32", "--keep-pii"])  # fmt: skip
    assert ok.exit_code == 0, ok.output
    manifest = json.loads(out.with_name("kept.manifest.json").read_text())
    assert [c["use"] for c in manifest["cleaners"]] == ["html", "control-chars", "nfkc",
                                                        "whitespace"]  # fmt: skip
    bad = CliRunner().invoke(cli, ["extract", str(reviews_csv), "--out", str(out),
                                   "--cleaners", "html,pii", "--keep-pii"])  # fmt: skip
    assert_one_line_error(bad, 2, "--keep-pii", "'pii'", "drop")
    for command in (["extract", "--help"], ["serve", "--help"], ["clean", "--help"]):
        help_text = " ".join(CliRunner().invoke(cli, command).output.split())
        assert "--keep-pii" in help_text, command
