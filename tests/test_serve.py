"""``recfeat serve`` end to end: the real server (FastAPI + uvicorn) started as a subprocess
on an ephemeral loopback port and called over HTTP, with the real MiniLM and a content
model trained here on MovieLens 100k."""

from __future__ import annotations

import base64
import concurrent.futures as cf
import dataclasses
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("prometheus_client")

pytestmark = pytest.mark.slow

KEY = "test-key-123"
AUTH = {"Authorization": f"Bearer {KEY}"}
START_TIMEOUT = 300  # seconds: model load + warm-up on a shared, busy CPU
URL_LINE = re.compile(r"ready on (http://127\.0\.0\.1:\d+)")


class Server:
    """A ``recfeat serve`` subprocess, launched at once; ``wait()`` returns it once its
    start-up line is printed (``url``)."""

    def __init__(self, args: list[str], log: Path):
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "RECFEAT_LOAD_PLUGINS": "", "RECFEAT_PROGRESS": "0"}  # fmt: skip
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from recfeat.cli.main import cli; cli()", "serve",
             "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=log.open("w"), text=True, env=env,
        )  # fmt: skip
        self.lines: list[str] = []
        self.url: str | None = None

    def wait(self) -> Server:
        if self.url is None:
            self.url = self._wait_for_url()
        return self

    def _wait_for_url(self) -> str:
        found: dict[str, str] = {}

        def read():
            for line in self.proc.stdout:
                self.lines.append(line)
                match = URL_LINE.search(line)
                if match and "url" not in found:
                    found["url"] = match.group(1)

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        while "url" not in found:
            if self.proc.poll() is not None:
                pytest.fail(f"recfeat serve exited with {self.proc.returncode}: {self.log.read_text()}")
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"recfeat serve did not start in {START_TIMEOUT} s: {self.log.read_text()}")
            time.sleep(0.1)
        return found["url"]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture(scope="module")
def spare_server(tmp_path_factory):
    """A second server, for the shutdown test: launched first, so that it loads while the
    test process extracts and trains (it is stopped by its test)."""
    srv = Server(["--threads", "1", "--max-queue", "64"],
                 tmp_path_factory.mktemp("spare") / "server.log")  # fmt: skip
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, movielens_100k, spare_server):
    """MovieLens 100k item vectors from ``recfeat.extract`` and a content model trained on them."""
    import recfeat

    root = tmp_path_factory.mktemp("serve")
    full = recfeat.load_dataset(movielens_100k)
    # The 300 most-rated movies and their ratings: every path, at a fraction of the encoding
    keep = set(full.interactions["item"].value_counts().index[:300])
    data = dataclasses.replace(
        full, interactions=full.interactions[full.interactions["item"].isin(keep)],
        items=full.items[full.items["item"].isin(keep)].reset_index(drop=True),
    )  # fmt: skip
    encoder = recfeat.encoder("minilm", threads=1)  # threads change speed, not vectors
    items = recfeat.extract(data, level="item", encoder=encoder, cache=False)
    feats_path = items.save(root / "items.parquet")
    features = recfeat.read_features(feats_path)
    bundle = recfeat.train(data, "content", item_features=features)
    model_path = recfeat.save_model(bundle, root / "content.model")
    return {"data": data, "encoder": encoder, "features": features,
            "features_path": feats_path, "model_path": model_path, "root": root}  # fmt: skip


@pytest.fixture(scope="module")
def server(trained):
    srv = Server(
        ["--threads", "1", "--api-key", KEY, "--model", str(trained["model_path"]),
         "--item-features", str(trained["features_path"]), "--max-queue", "4",
         "--max-batch-tokens", "1024", "--max-inputs", "64", "--max-chars", "5000",
         "--max-body-bytes", "200000"],
        trained["root"] / "server.log",
    ).wait()  # fmt: skip
    with httpx.Client(base_url=srv.url, headers=AUTH, timeout=120) as client:
        srv.client = client
        yield srv
    srv.stop()


def post(server, path: str, body, **kw):
    return server.client.post(path, json=body, **kw)


def one_line_error(response, status: int, *fragments: str) -> dict:
    assert response.status_code == status, response.text
    assert "\n" not in response.text.strip()
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code"}
    for fragment in fragments:
        assert fragment in error["message"], error
    return error


def metric_samples(server, name: str) -> list:
    from prometheus_client.parser import text_string_to_metric_families

    text = server.client.get("/metrics").text
    return [s for fam in text_string_to_metric_families(text) for s in fam.samples
            if s.name == name]  # fmt: skip


def cosine(a, b) -> np.ndarray:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


# -- probes and auth ---------------------------------------------------------------------------


def test_startup_line_names_backend_precision_device_and_warmup(server):
    line = next(x for x in server.lines if "ready on" in x)
    for fragment in ("backend torch", "precision fp32", "device cpu", "warm-up", "ms"):
        assert fragment in line, line


def test_probes_need_no_key_everything_else_does(server):
    """A load balancer checks /health and /ready without credentials; every other route,
    /metrics and /v1/models included, needs the key."""
    with httpx.Client(base_url=server.url, timeout=30) as anon:
        assert anon.get("/health").status_code == 200
        assert anon.get("/ready").status_code == 200
        for method, path in (("GET", "/metrics"), ("GET", "/v1/models"), ("POST", "/embed"),
                             ("POST", "/v1/embeddings"), ("POST", "/recommend")):  # fmt: skip
            r = anon.request(method, path, json={"texts": ["x"]})
            one_line_error(r, 401, "Authorization: Bearer")
        wrong = anon.get("/metrics", headers={"Authorization": "Bearer nope"})
        one_line_error(wrong, 401)
    assert server.client.get("/ready").status_code == 200


def test_openai_conventions_models_dimensions_and_unknown_fields(server):
    """What the OpenAI API and its clients expect: GET /v1/models lists the served model,
    `dimensions` other than the model's own is a 400 (MiniLM cannot be cut), `user` is
    accepted, and an unknown argument is a 400 naming it."""
    models = server.client.get("/v1/models")
    assert models.status_code == 200, models.text
    body = models.json()
    assert body["object"] == "list" and [m["id"] for m in body["data"]] == ["minilm"]
    assert body["data"][0]["object"] == "model"
    one = server.client.get("/v1/models/minilm")
    assert one.status_code == 200 and one.json()["id"] == "minilm"
    one_line_error(server.client.get("/v1/models/gpt-4"), 404, "not served here")
    ok = post(server, "/v1/embeddings", {"input": "a guitar", "dimensions": 384, "user": "u-1"})
    assert ok.status_code == 200, ok.text
    assert len(ok.json()["data"][0]["embedding"]) == 384
    one_line_error(post(server, "/v1/embeddings", {"input": "a guitar", "dimensions": 128}),
                   400, "does not support dimensions=128")  # fmt: skip
    one_line_error(post(server, "/v1/embeddings", {"input": "a guitar", "temperature": 0}),
                   400, "Unrecognized request argument supplied: temperature")  # fmt: skip
    # recfeat's own routes keep 422 for a misspelt field
    one_line_error(post(server, "/embed", {"text": ["a guitar"]}), 422)


def test_the_official_openai_client_works_unchanged(server, trained):
    """A user's own code: the official ``openai`` client pointed at recfeat serve lists the
    model, embeds strings and token ids, and gets its own BadRequestError for what the
    served model cannot do."""
    openai = pytest.importorskip("openai")  # in the dev extra, so CI runs this

    client = openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0, timeout=120)
    assert [m.id for m in client.models.list()] == ["minilm"]
    texts = trained["data"].items["text"].iloc[[3, 42]].tolist()
    got = client.embeddings.create(model="minilm", input=texts)
    served = np.array([d.embedding for d in got.data])
    offline, found = trained["features"].lookup(trained["data"].items["item"].iloc[[3, 42]].astype(str))
    assert found.all() and (cosine(served, offline) > 0.9999).all()
    # the client's default encoding is base64: decoded by the client into the same floats
    assert got.usage.prompt_tokens > 0 and len(got.data[0].embedding) == 384
    ids = trained["encoder"].load().tokenizer(texts)["input_ids"]
    by_ids = client.embeddings.create(model="minilm", input=ids)
    assert (cosine([d.embedding for d in by_ids.data], served) > 0.9999).all()
    with pytest.raises(openai.BadRequestError, match="dimensions"):
        client.embeddings.create(model="minilm", input="a guitar", dimensions=128)
    with pytest.raises(openai.BadRequestError, match="Unrecognized request argument"):
        client.embeddings.create(model="minilm", input="a guitar", extra_body={"temperature": 0})


# -- embeddings ----------------------------------------------------------------------------------


def test_openai_embeddings_match_offline_extract(server, trained):
    data, features = trained["data"], trained["features"]
    items = data.items.iloc[[0, 7, 99, 150, 299]]
    r = post(server, "/v1/embeddings", {"input": items["text"].tolist(), "model": "minilm"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "list" and body["model"] == "minilm"
    assert [d["index"] for d in body["data"]] == list(range(len(items)))
    served = np.array([d["embedding"] for d in body["data"]])
    offline, found = features.lookup(items["item"].astype(str))
    assert found.all()
    assert (cosine(served, offline) > 0.9999).all(), cosine(served, offline)
    tokens = trained["encoder"].tokenize(items["text"].tolist()).lengths
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] == int(tokens.sum())
    # one string and base64 give the same vector
    one = post(server, "/v1/embeddings", {"input": items["text"].iloc[0], "encoding_format": "base64"})
    assert one.status_code == 200, one.text
    decoded = np.frombuffer(base64.b64decode(one.json()["data"][0]["embedding"]), "<f4")
    assert cosine(decoded, served[0]) > 0.99999


def test_embed_reports_tokens_and_truncation_per_input(server, trained, mi_review_texts):
    from recfeat.extraction.stages import make_cleaner

    long = max(mi_review_texts[:200], key=len)[:4000]
    texts = [mi_review_texts[1], long, "Good strings"]
    r = post(server, "/embed", {"texts": texts})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["backend"] == "torch" and body["model"] == "minilm"
    cleaned = make_cleaner(None).clean(texts)
    encoder = trained["encoder"]
    want = encoder.encode(cleaned)
    assert (cosine(body["vectors"], want) > 0.9999).all()
    batch = encoder.tokenize(cleaned)
    assert [i["tokens"] for i in body["items"]] == batch.lengths.tolist()
    assert [i["tokens_dropped"] for i in body["items"]] == batch.n_dropped.tolist()
    assert [i["truncated"] for i in body["items"]] == [False, True, False]
    assert body["items"][1]["tokens"] == 256 and body["items"][1]["tokens_dropped"] > 0


def test_openai_token_id_input_is_decoded_with_the_served_models_tokenizer(server, trained):
    """OpenAI's other input forms, one list of token ids (one text) or a list of them
    (LangChain sends these by default): decoded with MiniLM's own tokenizer, special tokens
    dropped, and embedded as the text they spell."""
    texts = ["Great strings, bright tone!", "The tuner clips on and holds its pitch."]
    ids = trained["encoder"].load().tokenizer(texts)["input_ids"]  # [CLS] ... [SEP]
    by_text = np.array([d["embedding"] for d in post(server, "/v1/embeddings", {"input": texts}).json()["data"]])
    many = post(server, "/v1/embeddings", {"input": ids})
    assert many.status_code == 200, many.text
    body = many.json()
    assert [d["index"] for d in body["data"]] == [0, 1]
    assert (cosine([d["embedding"] for d in body["data"]], by_text) > 0.9999).all()
    assert body["usage"]["prompt_tokens"] == sum(len(x) for x in ids)
    one = post(server, "/v1/embeddings", {"input": ids[1]})
    assert one.status_code == 200, one.text
    assert len(one.json()["data"]) == 1
    assert cosine(one.json()["data"][0]["embedding"], by_text[1]) > 0.9999
    # ids outside the vocabulary, bools, fractions, empty lists and mixed forms: one 400 each
    err = one_line_error(post(server, "/v1/embeddings", {"input": [[101, 2307, 99999, 102]]}), 400,
                         "input.0.2", "token id 99999", "30522 tokens", "tiktoken")  # fmt: skip
    assert err["code"] == "invalid_token_id"
    one_line_error(post(server, "/v1/embeddings", {"input": [101, -1]}), 400, "token id -1")
    one_line_error(post(server, "/v1/embeddings", {"input": [101, True, 102]}), 400, "input.1",
                   "True")  # fmt: skip
    one_line_error(post(server, "/v1/embeddings", {"input": [[101, 2.5]]}), 400, "input.0.1", "2.5")
    one_line_error(post(server, "/v1/embeddings", {"input": []}), 400, "empty")
    one_line_error(post(server, "/v1/embeddings", {"input": [[101, 102], []]}), 400, "input.1",
                   "empty")  # fmt: skip
    one_line_error(post(server, "/v1/embeddings", {"input": ["a text", 5]}), 400, "input.1")
    # only special tokens: nothing left to embed, as for an empty text
    one_line_error(post(server, "/v1/embeddings", {"input": [[101, 102]]}), 400, "empty")
    # the limits of text input hold for ids too
    one_line_error(post(server, "/v1/embeddings", {"input": [ids[0]] * 65}), 413, "--max-inputs")
    one_line_error(post(server, "/v1/embeddings", {"input": [2307] * 5001}), 413, "--max-chars")


def test_bad_input_gets_one_line_errors_and_the_server_keeps_serving(server):
    c = server.client
    one_line_error(c.post("/embed", content=b'{"texts": [', headers={"Content-Type": "application/json"}),
                   400, "malformed JSON")  # fmt: skip
    one_line_error(post(server, "/embed", {"texts": "not a list"}), 422, "texts")
    one_line_error(post(server, "/embed", {"texts": [1, 2]}), 422, "texts.0")
    one_line_error(post(server, "/embed", {"text": ["typo"]}), 422)
    one_line_error(post(server, "/embed", {"texts": []}), 400, "empty")
    one_line_error(post(server, "/v1/embeddings", {"input": ["   "]}), 400, "empty")
    one_line_error(post(server, "/v1/embeddings", {"input": ["x"] * 10_000}), 413,
                   "10000 inputs", "--max-inputs", "64")  # fmt: skip
    one_line_error(post(server, "/embed", {"texts": ["y" * 5001]}), 413, "--max-chars", "5000")
    one_line_error(c.post("/embed", content=b"x" * 300_000), 413, "--max-body-bytes")
    err = one_line_error(post(server, "/v1/embeddings", {"input": "x", "model": "gpt-9"}), 404,
                         "gpt-9")  # fmt: skip
    assert err["code"] == "model_not_found"
    one_line_error(c.get("/no/such/route"), 404)
    one_line_error(post(server, "/recommend", {"user": "1", "k": 0}), 422, "k")
    assert post(server, "/embed", {"texts": ["still serving"]}).status_code == 200
    assert c.get("/ready").status_code == 200


def test_concurrent_requests_are_merged_into_one_engine_call(server):
    def batches_over_one() -> float:
        samples = metric_samples(server, "recfeat_batch_requests_bucket")
        total = next(s.value for s in samples if s.labels["le"] == "+Inf")
        single = next(s.value for s in samples if s.labels["le"] == "1.0")
        return total - single

    before = batches_over_one()
    for attempt in range(5):  # 4 callers at once: the queue (--max-queue 4) never refuses
        gate = threading.Barrier(4)

        def call(i, attempt=attempt, gate=gate):
            with httpx.Client(base_url=server.url, headers=AUTH, timeout=120) as c:
                gate.wait()
                return c.post("/embed", json={"texts": [f"merge me {attempt} {i} " * 20]})

        with cf.ThreadPoolExecutor(4) as pool:
            codes = [r.status_code for r in pool.map(call, range(4))]
        assert codes == [200] * 4
        if batches_over_one() > before:
            break
    assert batches_over_one() > before, "no engine call merged two requests"
    sizes = metric_samples(server, "recfeat_batch_size_count")
    assert sizes and sizes[0].value >= 2


def test_full_queue_answers_429_with_retry_after(server, mi_review_texts):
    long = [t[:3000] for t in mi_review_texts if len(t) > 1500][:6]
    assert len(long) == 6  # 6 x 256 tokens: over the 1024-token budget, one request per call

    def call(i):
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=180) as c:
            gate.wait()
            # unique texts: the cache must not answer them
            return c.post("/embed", json={"texts": [f"{i} {t}" for t in long]})

    gate = threading.Barrier(16)
    with cf.ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(call, range(16)))
    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 429}, (codes, [r.text for r in responses
                                             if r.status_code not in (200, 429)])  # fmt: skip
    refused = [r for r in responses if r.status_code == 429]
    assert refused, codes
    for r in refused:
        one_line_error(r, 429, "queue is full")
        assert int(r.headers["Retry-After"]) >= 1
    assert 200 in codes
    statuses = {s.labels["status"] for s in metric_samples(server, "recfeat_requests_total")
                if s.labels["route"] == "/embed"}  # fmt: skip
    assert {"200", "429"} <= statuses
    assert metric_samples(server, "recfeat_queue_depth")


# -- recommendations -------------------------------------------------------------------------


def test_known_user_is_ranked_by_the_model_without_seen_items(server, trained):
    r = post(server, "/recommend", {"user": "1", "k": 10})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["source"] == "model" and body["user"] == "1"
    assert len(body["items"]) == 10
    seen = set(trained["data"].interactions.query("user == '1'")["item"].astype(str))
    assert seen and not seen & {i["item"] for i in body["items"]}
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)


def test_unknown_user_without_history_gets_popularity_and_is_told(server, trained):
    r = post(server, "/recommend", {"user": "nobody-at-all", "k": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["source"] == "popularity"
    counts = trained["data"].interactions["item"].astype(str).value_counts()
    assert body["items"][0]["item"] == counts.index[0]


def test_recommend_says_what_it_used_and_ignored_and_scores_on_one_range(server, trained):
    """A known user's history texts are not silently dropped, unknown history ids are named
    (all unknown: refused), and popularity scores live on the cosine's range, not counts."""
    r = post(server, "/recommend", {"user": "1", "k": 3, "history_texts": ["a space opera"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["source"] == "model" and body["used"] == ["user"]
    assert body["score_scale"] == "model-share"
    (ignored,) = body["ignored"]
    assert ignored["field"] == "history_texts" and "known to the model" in ignored["reason"]
    err = one_line_error(post(server, "/recommend", {"user": "cold", "history_items": ["no-such-movie"]}),
                         422, "'no-such-movie'", "no id is known")  # fmt: skip
    assert err["code"] == "unknown_items"
    known = str(trained["data"].items["item"].iloc[0])
    r = post(server, "/recommend", {"user": "cold", "k": 3, "history_items": [known, "no-such-movie"]})
    assert r.status_code == 200, r.text
    assert r.json()["source"] == "text-profile" and r.json()["used"] == ["history_items"]
    assert {"field": "history_items", "items": ["no-such-movie"]}.items() <= r.json()["ignored"][0].items()
    popular = post(server, "/recommend", {"k": 20}).json()
    profile = post(server, "/recommend", {"k": 20, "history_texts": ["a space opera"]}).json()
    assert (popular["source"], popular["score_scale"]) == ("popularity", "popularity-share")
    assert (profile["source"], profile["score_scale"]) == ("text-profile", "cosine")
    counts = trained["data"].interactions["item"].astype(str).value_counts()
    assert popular["items"][0]["raw_score"] == counts.iloc[0] > 1
    for answer in (popular, profile):
        assert all(-1.0 <= i["score"] <= 1.0 for i in answer["items"]), answer
    assert popular["items"][0]["score"] == 1.0


def test_item_added_by_put_is_recommended_from_matching_history(server):
    new_id = "new-item-theremin"
    text = "Ghost Choir Theremin Symphony (2031) Sci-Fi|Musical"
    r = server.client.put(f"/items/{new_id}", json={"text": text})
    assert r.status_code == 200, r.text
    assert r.json()["created"] is True
    batch = post(server, "/items", {"items": [{"id": "new-item-b", "text": "Quiet Farm Harvest (2030) Drama"},
                                              {"id": "new-item-c", "text": "Laser Robot Wars (2032) Action"}]})  # fmt: skip
    assert batch.status_code == 200 and batch.json()["created"] == 2
    r = post(server, "/recommend", {"user": "cold-user-1", "k": 5,
                                    "history_texts": ["a theremin symphony sung by a ghost choir"]})  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["source"] == "text-profile"
    assert body["items"][0]["item"] == new_id, body
    # history given as items: the new item itself is the history, so it is left out
    r = post(server, "/recommend", {"user": "cold-user-2", "k": 5, "history_items": [new_id]})
    assert r.json()["source"] == "text-profile"
    assert new_id not in {i["item"] for i in r.json()["items"]}
    # the content model scores the new items for known users too, with no retraining
    r = post(server, "/recommend", {"user": "1", "k": 5000})
    assert r.json()["source"] == "model"
    assert new_id in {i["item"] for i in r.json()["items"]}


# -- shutdown --------------------------------------------------------------------------------


def test_sigterm_answers_every_accepted_request(spare_server, mi_review_texts):
    srv = spare_server.wait()
    long = [t[:2000] for t in mi_review_texts if len(t) > 1200][:4]
    n = 6

    def call(i):
        with httpx.Client(base_url=srv.url, timeout=180) as c:
            return c.post("/embed", json={"texts": [f"{i} {t}" for t in long]})

    pool = cf.ThreadPoolExecutor(n)
    futures = [pool.submit(call, i) for i in range(n)]
    with httpx.Client(base_url=srv.url, timeout=30) as probe:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            text = probe.get("/metrics").text
            inflight = re.search(r"^recfeat_requests_in_flight (\S+)$", text, re.M)
            if inflight and float(inflight.group(1)) >= n:
                break
            time.sleep(0.02)
        else:
            pytest.fail("the requests never reached the server")
    srv.proc.send_signal(signal.SIGTERM)
    try:  # new work after the signal: refused (503), or the port is already closed
        late = httpx.post(f"{srv.url}/embed", json={"texts": ["too late"]}, timeout=30)
        one_line_error(late, 503, "shutting down")
    except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError):
        pass
    codes = [f.result(timeout=180).status_code for f in futures]
    pool.shutdown()
    assert codes == [200] * n
    assert srv.proc.wait(120) == 0, srv.log.read_text()
    assert "Traceback" not in srv.log.read_text()
