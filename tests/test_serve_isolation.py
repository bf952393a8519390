"""One client cannot hurt the others (``recfeat serve`` hardening): a big request is spread
over several engine calls and cannot starve a small one; requests that time out or whose
client disconnects leave the queue; an input the engine rejects fails its own request only;
a stalled body gets 408 and cannot hold up shutdown; item ids and the item store are
bounded; bodies are read as UTF-8 JSON whatever their content type; every numeric option and
the API key are checked before anything starts.

The servers are real (``recfeat serve`` subprocesses on loopback ports, uvicorn and all)
with a fake encoder that sleeps a fixed time per text, so timings depend on the code under
test and not on how fast this machine runs a model; every time bound is generous."""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from recfeat.components.encoder import Encoder
from recfeat.errors import OptionError, UsageError

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("prometheus_client")

TESTS = Path(__file__).resolve().parent
URL_LINE = re.compile(r"ready on (http://127\.0\.0\.1:\d+)")
START_TIMEOUT = 120
DIM = 8
REJECT = "REJECT-ME"  # the fake tokenizer refuses a text holding this
BIG_TEXT = 16_000  # characters: 256 estimated tokens, so 32 texts fill the default budget


class SlowFakeEncoder(Encoder):
    """A stand-in for a model: a vector from a hash of the text, ``FAKE_SECONDS_PER_TEXT``
    of sleep per text (the encode thread is busy as with a real model, without using a
    core), and a TypeError for a text holding ``REJECT``, as a tokenizer that refuses an
    input fails the whole call."""

    name = "slow-fake"
    backend = "fake"

    def __init__(self, max_length: int = 256):
        self.max_length = max_length

    @property
    def dim(self) -> int:
        return DIM

    def fingerprint(self):
        return {"encoder": self.name, "backend": self.backend, "max_length": self.max_length,
                "pooling": "mean", "normalize": True, "precision": "fp32"}  # fmt: skip

    def encode(self, texts, per_text: bool = False):
        texts = list(texts)
        if any(REJECT in t for t in texts):
            raise TypeError("TextEncodeInput must be Union[TextInputSequence, Tuple[...]]")
        time.sleep(float(os.environ.get("FAKE_SECONDS_PER_TEXT", "0")) * len(texts))
        kept = np.array([min(len(t) // 4 + 2, self.max_length) for t in texts], dtype=np.int64)
        self.last_stats = {"n_kept": kept, "n_dropped": np.zeros(len(texts), np.int64),
                           "tokenize_seconds": 0.0}  # fmt: skip
        return (
            np.stack([fake_vector(t) for t in texts]) if texts else np.zeros((0, DIM), np.float32)
        )


def fake_vector(text: str) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)


def register_fake() -> None:
    from recfeat import get_registry

    registry = get_registry("encoder")
    if "slow-fake" not in registry:
        registry.register(SlowFakeEncoder)


# The server process registers the fake encoder, then runs the real command line.
LAUNCH = (f"import sys; sys.path.insert(0, {str(TESTS)!r}); import test_serve_isolation as t; "
          "t.register_fake(); from recfeat.cli.main import cli; cli(prog_name='recfeat')")  # fmt: skip


class FakeServer:
    """``recfeat serve --encoder slow-fake`` as a subprocess on a free loopback port."""

    def __init__(self, args: list[str], log: Path, seconds_per_text: float):
        env = {**os.environ, "RECFEAT_LOAD_PLUGINS": "", "RECFEAT_PROGRESS": "0",
               "FAKE_SECONDS_PER_TEXT": str(seconds_per_text)}  # fmt: skip
        env.pop("RECFEAT_API_KEY", None)
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, "serve", "--encoder", "slow-fake", "--port", "0",
             "--cleaners", "none", *args],
            stdout=subprocess.PIPE, stderr=log.open("w"), text=True, env=env,
        )  # fmt: skip
        self.url = self._wait_for_url()
        self.host, self.port = self.url.removeprefix("http://").split(":")
        self.client = httpx.Client(base_url=self.url, timeout=60)

    def _wait_for_url(self) -> str:
        found: dict[str, str] = {}

        def read():
            for line in self.proc.stdout:
                match = URL_LINE.search(line)
                if match:
                    found.setdefault("url", match.group(1))

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        while "url" not in found:
            if self.proc.poll() is not None:
                pytest.fail(
                    f"recfeat serve exited with {self.proc.returncode}: {self.log.read_text()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"recfeat serve did not start: {self.log.read_text()}")
            time.sleep(0.05)
        return found["url"]

    def metric(self, name: str, **labels: str) -> float:
        from prometheus_client.parser import text_string_to_metric_families

        text = self.client.get("/metrics").text
        return sum(s.value for fam in text_string_to_metric_families(text) for s in fam.samples
                   if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))  # fmt: skip

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def one_line_error(response, status: int, *fragments: str) -> dict:
    assert response.status_code == status, response.text
    assert "\n" not in response.text.strip()
    error = response.json()["error"]
    for fragment in fragments:
        assert fragment in error["message"], error
    return error


def big_texts(tag: str, n: int = 256) -> list[str]:
    """``n`` texts of ``BIG_TEXT`` characters (the documented per-request maximum: 256 x 16 KB)."""
    return [f"{tag} {i} " + "x" * (BIG_TEXT - len(f"{tag} {i} ")) for i in range(n)]


def wait_until(check, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {seconds} s: {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """30 ms per text: one 256-text request takes ~8 s of engine time in 8 calls of 32."""
    srv = FakeServer(["--request-timeout", "30", "--max-items", "5", "--body-timeout", "2"],
                     tmp_path_factory.mktemp("iso") / "server.log", seconds_per_text=0.03)  # fmt: skip
    yield srv
    srv.client.close()
    srv.stop()


@pytest.fixture(scope="module")
def impatient(tmp_path_factory):
    """A short --request-timeout and a queue of two: given-up requests must leave it."""
    srv = FakeServer(["--request-timeout", "1.5", "--max-queue", "2"],
                     tmp_path_factory.mktemp("impatient") / "server.log", seconds_per_text=0.03)  # fmt: skip
    yield srv
    srv.client.close()
    srv.stop()


# -- fairness --------------------------------------------------------------------------------


def test_a_big_request_cannot_starve_a_one_text_request(server):
    big = big_texts("fair")
    with cf.ThreadPoolExecutor(2) as pool:
        started = time.monotonic()
        big_future = pool.submit(server.client.post, "/embed", json={"texts": big})
        time.sleep(0.5)
        sent = time.monotonic()
        small = server.client.post("/embed", json={"texts": ["just one short text"]})
        small_done = time.monotonic()
        assert small.status_code == 200, small.text
        assert not big_future.done(), "the big request must still be running"
        big_response = big_future.result(timeout=60)
    assert small_done - sent < 5, f"the one-text request waited {small_done - sent:.1f} s"
    # the JSON carries float32 values exactly (9 significant digits): compared as float32
    np.testing.assert_array_equal(np.float32(small.json()["vectors"][0]), fake_vector("just one short text"))
    # the big one went on in later calls and came back whole, rows in request order
    assert big_response.status_code == 200, big_response.text
    assert time.monotonic() - started > 5  # 256 x 30 ms of engine time: it really was big
    vectors = np.array(big_response.json()["vectors"], dtype=np.float32)
    np.testing.assert_array_equal(vectors, np.stack([fake_vector(t) for t in big]))


# -- given-up requests leave the queue ----------------------------------------------------------


def test_timed_out_requests_stop_being_encoded(impatient):
    srv = impatient
    before = srv.metric("recfeat_batch_size_sum")
    r = srv.client.post("/embed", json={"texts": big_texts("timeout")})
    one_line_error(r, 503, "--request-timeout")
    wait_until(
        lambda: srv.metric("recfeat_queue_depth") == 0, 5, "the timed-out job left the queue"
    )
    time.sleep(1.5)  # the call in flight ends (<= 32 x 30 ms); nothing of the job follows it
    encoded = srv.metric("recfeat_batch_size_sum") - before
    time.sleep(1.5)
    assert srv.metric("recfeat_batch_size_sum") - before == encoded
    assert encoded <= 3 * 32, f"{encoded} of 256 texts were encoded for a request that gave up"
    sent = time.monotonic()
    assert srv.client.post("/embed", json={"texts": ["after the timeout"]}).status_code == 200
    assert time.monotonic() - sent < 5


def test_disconnected_requests_leave_the_queue_and_free_their_place(impatient):
    srv = impatient
    before = srv.metric("recfeat_batch_size_sum")
    gone_before = srv.metric("recfeat_requests_total", route="/embed", status="499")

    def hang_up(i):  # the client gives up after 0.4 s and closes its connection
        with (
            httpx.Client(base_url=srv.url, timeout=0.4) as c,
            pytest.raises(httpx.TimeoutException),
        ):
            c.post("/embed", json={"texts": big_texts(f"gone {i}")})

    with cf.ThreadPoolExecutor(2) as pool:
        list(pool.map(hang_up, range(2)))  # --max-queue 2: both places were taken
    # their places are free at once: two more requests are queued (not 429) and answered
    with cf.ThreadPoolExecutor(2) as pool:
        codes = list(pool.map(lambda i: srv.client.post("/embed", json={"texts": [f"next {i}"]})
                              .status_code, range(2)))  # fmt: skip
    assert codes == [200, 200]
    wait_until(lambda: srv.metric("recfeat_requests_total", route="/embed", status="499")
               >= gone_before + 2, 5, "the disconnects were counted")  # fmt: skip
    time.sleep(1.5)
    encoded = srv.metric("recfeat_batch_size_sum") - before
    assert encoded <= 4 * 32 + 2, f"{encoded} texts encoded for two hung-up 256-text requests"
    assert srv.metric("recfeat_queue_depth") == 0
    assert srv.metric("recfeat_requests_in_flight") == 0


# -- one bad input --------------------------------------------------------------------------------


def test_an_input_the_engine_rejects_fails_only_its_own_request(server):
    good = [[f"innocent {i}", f"bystander {i}"] for i in range(3)]
    calls_before = server.metric("recfeat_batch_requests_count")

    def post(texts):
        return server.client.post("/embed", json={"texts": texts})

    with cf.ThreadPoolExecutor(5) as pool:
        blocker = pool.submit(post, [f"blocker {i}" for i in range(30)])  # ~0.9 s of engine time
        time.sleep(0.3)  # the rest queue up behind it and are merged into the next call
        bad = pool.submit(post, ["fine", f"a text with {REJECT} in it"])
        rest = [pool.submit(post, texts) for texts in good]
        assert blocker.result(60).status_code == 200
        err = one_line_error(bad.result(60), 400, "rejected", "TypeError")
        assert err["code"] == "rejected_input"
        for texts, future in zip(good, rest, strict=True):
            r = future.result(60)
            assert r.status_code == 200, r.text
            np.testing.assert_array_equal(
                np.float32(r.json()["vectors"]), np.stack([fake_vector(t) for t in texts])
            )
    assert server.metric("recfeat_batch_requests_count") > calls_before
    # a string that is not text at all is refused before it reaches the engine
    lone = server.client.post("/embed", content=b'{"texts": ["ok", "\\ud800 broken"]}',
                              headers={"Content-Type": "application/json"})  # fmt: skip
    one_line_error(lone, 400, "input 1", "not valid Unicode")


# -- bodies ---------------------------------------------------------------------------------------


def _stalled_request(srv: FakeServer) -> socket.socket:
    """A connection that sent its headers and 10 of 1000 promised body bytes, then stalls."""
    sock = socket.create_connection((srv.host, int(srv.port)), timeout=30)
    sock.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000\r\n\r\n" + b'{"texts": ')  # fmt: skip
    return sock


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_stalled_body_gets_408_and_frees_its_slot(server):
    sock = _stalled_request(server)
    wait_until(lambda: server.metric("recfeat_requests_in_flight") >= 1, 5, "the request arrived")
    started = time.monotonic()
    with sock:
        answer = _read_all(sock)  # ends when the server closes the connection
    assert time.monotonic() - started < 10  # --body-timeout 2
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"--body-timeout" in answer and b"Traceback" not in answer
    wait_until(lambda: server.metric("recfeat_requests_in_flight") == 0, 5, "the slot was freed")


def test_bodies_are_utf8_json_whatever_the_content_type(server):
    c = server.client
    for content_type in (
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/octet-stream",
    ):
        r = c.post(
            "/embed", content=b'{"texts": ["plain"]}', headers={"Content-Type": content_type}
        )
        assert r.status_code == 200, (content_type, r.text)
    r = c.post(
        "/embed", content=b'{"texts": ["caf\xe9"]}', headers={"Content-Type": "application/json"}
    )
    err = one_line_error(r, 400, "not UTF-8", "UTF-8")
    assert err["code"] == "invalid_json"
    one_line_error(c.post("/embed", content=b'{"texts": [', headers={"Content-Type": "text/plain"}),
                   400, "malformed JSON")  # fmt: skip


# -- item ids and the store ------------------------------------------------------------------------


def test_item_ids_are_bounded_text_and_the_store_is_capped(server):
    from recfeat.serve.items import MAX_ID_CHARS

    c = server.client
    one_line_error(c.put(f"/items/{'a' * (MAX_ID_CHARS + 1)}", json={"text": "t"}), 400,
                   f"{MAX_ID_CHARS + 1} characters", str(MAX_ID_CHARS))  # fmt: skip
    # two different invalid byte sequences must not collapse into one stored id
    for raw in ("%FF", "%FE%FF"):
        one_line_error(c.put(f"/items/{raw}", json={"text": "t"}), 400, "not UTF-8")
    one_line_error(c.post("/items", content=b'{"items": [{"id": "\\udcff", "text": "t"}]}',
                          headers={"Content-Type": "application/json"}),
                   400, "items.0.id", "not valid Unicode")  # fmt: skip
    one_line_error(c.post("/items", json={"items": [{"id": "x" * 30_000, "text": "t"}]}), 400,
                   "items.0.id", "30000 characters")  # fmt: skip
    r = c.put("/items/caf%C3%A9", json={"text": "a cafe"})
    assert r.status_code == 200 and r.json()["id"] == "café", r.text
    # --max-items 5: the store fills up, then refuses new ids (replacing one still works)
    r = c.post(
        "/items", json={"items": [{"id": f"item-{i}", "text": f"item {i}"} for i in range(4)]}
    )
    assert r.status_code == 200 and r.json()["items"] == 5, r.text
    err = one_line_error(c.put("/items/one-too-many", json={"text": "no room"}), 507,
                         "--max-items", "5")  # fmt: skip
    assert err["code"] == "store_full"
    one_line_error(c.post("/items", json={"items": [{"id": "item-0", "text": "again"},
                                                    {"id": "new", "text": "no room"}]}), 507)  # fmt: skip
    r = c.put("/items/item-0", json={"text": "replaced"})
    assert r.status_code == 200 and r.json()["created"] is False and r.json()["items"] == 5
    assert c.get("/ready").json()["items"] == 5


# -- shutdown ---------------------------------------------------------------------------------------


def test_sigterm_with_a_stalled_client_exits_quickly_and_cleanly(tmp_path):
    srv = FakeServer(["--body-timeout", "3"], tmp_path / "server.log", seconds_per_text=0.0)
    stalled = _stalled_request(srv)
    idle = socket.create_connection((srv.host, int(srv.port)), timeout=30)  # no request at all
    wait_until(lambda: srv.metric("recfeat_requests_in_flight") >= 1, 5, "the request arrived")
    srv.client.close()
    started = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    code = srv.proc.wait(60)
    took = time.monotonic() - started
    with stalled, idle:
        answer = _read_all(stalled)
    log = srv.log.read_text()
    assert code == 0, log
    assert took < 15, f"shutdown took {took:.1f} s (--body-timeout 3, --request-timeout 30)"
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert "Traceback" not in log and "ERROR" not in log, log


# -- options ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("option", "value", "fragment"), [
    ("batch_window_ms", math.inf, "--batch-window-ms"),
    ("batch_window_ms", math.nan, "--batch-window-ms"),
    ("batch_window_ms", 5000, "--batch-window-ms"),
    ("request_timeout", math.inf, "--request-timeout"),
    ("body_timeout", 0, "--body-timeout"),
    ("body_timeout", -1.0, "--body-timeout"),
    ("max_queue", 2.5, "--max-queue"),
    ("max_items", 0, "--max-items"),
    ("max_inputs", True, "--max-inputs"),
    ("port", "8000", "--port"),
    ("max_body_bytes", 2**40, "--max-body-bytes"),
])  # fmt: skip
def test_every_numeric_serve_option_is_finite_and_in_range(option, value, fragment):
    import recfeat.api as api

    with pytest.raises(OptionError) as caught:
        api.serve_settings(None, **{option: value})
    message = str(caught.value)
    assert fragment in message and "\n" not in message


def test_a_batch_window_must_be_shorter_than_the_request_timeout():
    import recfeat.api as api

    with pytest.raises(OptionError, match="--batch-window-ms 500 is not below --request-timeout"):
        api.serve_settings(None, batch_window_ms=500, request_timeout=0.4)
    assert api.serve_settings(None, batch_window_ms=500).server.batch_window_ms == 500


def test_an_empty_api_key_is_refused_not_read_as_no_key(monkeypatch):
    import recfeat.api as api

    monkeypatch.delenv("RECFEAT_API_KEY", raising=False)
    assert api.serve_settings(None).server.api_key is None
    for key in ("", "   "):
        with pytest.raises(OptionError, match="--api-key is empty"):
            api.serve_settings(None, api_key=key)
    with pytest.raises(OptionError, match="printable ASCII"):
        api.serve_settings(None, api_key=" padded ")
    monkeypatch.setenv("RECFEAT_API_KEY", "from-env")
    assert api.serve_settings(None).server.api_key == "from-env"
    assert api.serve_settings(None, api_key="flag").server.api_key == "flag"
    monkeypatch.setenv("RECFEAT_API_KEY", "")
    with pytest.raises(OptionError, match="RECFEAT_API_KEY is empty.*unset RECFEAT_API_KEY"):
        api.serve_settings(None)


def test_the_command_line_refuses_them_in_one_line_with_exit_2(monkeypatch):
    from recfeat.cli.main import cli

    monkeypatch.setenv("RECFEAT_API_KEY", " ")
    result = CliRunner().invoke(cli, ["serve", "--port", "0"])
    assert result.exit_code == 2, result.output
    assert "RECFEAT_API_KEY is empty" in result.output
    monkeypatch.delenv("RECFEAT_API_KEY")
    result = CliRunner().invoke(cli, ["serve", "--port", "0", "--batch-window-ms", "inf"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "--batch-window-ms" in lines[0], result.output


# -- --item-features ------------------------------------------------------------------------------


def _features_file(path: Path, level: str, **manifest) -> Path:
    import pandas as pd

    from recfeat.data.features import write_features

    ids = pd.DataFrame({"user": ["u1", "u2"], "item": ["i1", "i2"]} if level == "review"
                       else {"item": ["i1", "i2"]})  # fmt: skip
    fake = SlowFakeEncoder().fingerprint()
    meta = {"level": level, "encoder": fake, "backend": "fake", "max_length": 256,
            "pooling": "mean", "precision": "fp32", **manifest}  # fmt: skip
    return write_features(path, ids, np.ones((2, DIM), np.float32), meta)


def _build(item_features: Path, **settings):
    from recfeat.serve.server import build_state
    from recfeat.serve.state import ServeSettings

    return build_state(ServeSettings(**settings), encoder="slow-fake", engine=SlowFakeEncoder(),
                       item_features=str(item_features), cleaners="none")  # fmt: skip


def test_item_features_must_be_item_level_from_the_served_encoder_settings(tmp_path, capsys):
    with pytest.raises(UsageError, match=r"review-level.*recfeat extract DATA --level item"):
        _build(_features_file(tmp_path / "reviews.parquet", "review"))
    with pytest.raises(UsageError, match=r"max_length 128 vs 256 served"):
        _build(_features_file(tmp_path / "short.parquet", "item", max_length=128,
                              encoder={**SlowFakeEncoder().fingerprint(), "max_length": 128}))  # fmt: skip
    with pytest.raises(UsageError, match="--max-items 1"):
        _build(_features_file(tmp_path / "items.parquet", "item"), max_items=1)
    state, _ = _build(_features_file(tmp_path / "other.parquet", "item", backend="onnx"))
    assert len(state.store) == 2
    assert "backend onnx" in capsys.readouterr().err  # a note: vectors differ only slightly


def test_the_command_line_names_the_fix_for_review_level_features(tmp_path, monkeypatch):
    from recfeat.cli.main import cli

    register_fake()
    monkeypatch.delenv("RECFEAT_API_KEY", raising=False)
    path = _features_file(tmp_path / "reviews.parquet", "review")
    result = CliRunner().invoke(cli, ["serve", "--encoder", "slow-fake", "--port", "0",
                                      "--item-features", str(path)])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "recfeat extract DATA --level item" in result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1


def test_a_different_cleaner_chain_gets_a_note(tmp_path, capsys):
    path = _features_file(tmp_path / "items.parquet", "item", cleaners=[{"use": "html"}])
    state, _ = _build(path)  # the server runs with --cleaners none
    assert len(state.store) == 2
    err = capsys.readouterr().err
    assert "cleaners html" in err and "with none" in err and "--cleaners html" in err
