"""The second attack round (issue 21): the serving path, the Python API, Ray, and trust in
files recfeat finds on disk.

Three kinds of case, all run by run_attack.py like the first round's:

- ``mode="run"``: a ``recfeat`` command (planted journals and export manifests, Ray misuse,
  a FIFO as input, serve options that can never work). ``{RAY}`` in argv is the test Ray
  cluster (``RECFEAT_TEST_RAY_ADDRESS``; the case is skipped without one) and ``{NOT_RAY}``
  a loopback port where the harness listens but speaks no Ray.
- ``mode="python"``: argv[0] is Python run with ``recfeat`` imported; a RecfeatError is
  printed as one ``Error:`` line with its exit code (what the CLI does), anything else
  escapes as a traceback, which is what the "raw exception from the Python API" class counts.
- ``mode="http"``: ``recfeat serve --port 0 ARGV`` starts on loopback; once it says "ready"
  the case's ``client(url, folder)`` plays the hostile (or innocent) clients and returns the
  problems it saw; then the server gets SIGTERM and must stop within ``shutdown_s`` with exit
  0 and no traceback.

Like cases.py, this module imports no recfeat code: it may attack another tree.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from benchmarks.attack.cases import DEAD_PID, ML, Case, _write

CLASSES2 = {
    10: "input or earlier output lost",
    11: "silent wrong result",
    12: "raw exception from the Python API",
    13: "hang without a message",
    14: "server degraded for other clients",
    15: "partial output left",
    16: "poor message",
}

JOURNAL = ("journal",)
REFUSED = ("refus", "will not", "not act", "left in place", "untrusted")
EV = ("--models", "global-mean,bias")
RAY = ("--ray", "--ray-address", "{RAY}")
MODEL = "model.joblib"  # a bias model trained on ratings.csv (MovieLens 100k, first 3,000 rows)


# -- planted files ------------------------------------------------------------------------------


def _plant_journal(out: str, relative: bool = False):
    """An output folder ``out`` holding the commit journal of a dead process that, acted on,
    replaces ``victim.txt`` beside the folder with ``out/evil.txt`` and deletes the folder
    ``keep/`` (both outside ``out``). The snapshot of the case folder sees either loss."""

    def setup(d: Path) -> None:
        o = d / out
        o.mkdir(parents=True, exist_ok=True)
        (d / "victim.txt").write_text("the user's file\n")
        (d / "keep").mkdir()
        (d / "keep" / "notes.txt").write_text("the user's notes\n")
        (o / "evil.txt").write_text("planted content\n")
        journal = o / f".recfeat-commit.{DEAD_PID}.json"
        name = (lambda p: os.path.relpath(d / p, o)) if relative else (lambda p: str(d / p))
        record = {"format": "recfeat-commit/1",
                  "entries": [{"tmp": name(f"{out}/evil.txt"), "final": name("victim.txt"), "old": name("keep")}],
                  "journals": [str(journal)]}  # fmt: skip
        journal.write_text(json.dumps(record))

    return setup


def _manifest_points_out(how: str):
    """The base export ``exp`` whose manifest names a model file outside the folder."""

    def setup(d: Path) -> None:
        shutil.copytree(d.parent / "_base" / "exp", d / "exp")
        (d / "other").mkdir()
        manifest = json.loads((d / "exp" / "manifest.json").read_text())
        default = manifest["default_file"]
        shutil.copy(d / "exp" / default, d / "other" / "model.onnx")
        name = "../other/model.onnx" if how == "dotdot" else str(d / "other" / "model.onnx")
        manifest["files"][name] = manifest["files"][default]
        for step in manifest.get("steps", []):
            if step.get("file") == default:
                step["file"] = name
        manifest["default_file"] = name
        (d / "exp" / "manifest.json").write_text(json.dumps(manifest))

    return setup


def _shards(**files: str):
    """A folder ``shards/`` with the given files (name -> base file to copy, or text)."""

    def setup(d: Path) -> None:
        (d / "shards").mkdir()
        for name, src in files.items():
            dest = d / "shards" / name.replace("__", "/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            base = d.parent / "_base" / src
            if base.is_file():
                shutil.copy(base, dest)
            else:
                dest.write_bytes(src.encode("latin-1"))

    return setup


def _user_files_in(out: str):
    """``out/`` already holds files that look like a Ray run's shards but are the user's."""

    def setup(d: Path) -> None:
        o = d / out
        (o / "_stats").mkdir(parents=True)
        shutil.copy(d.parent / "_base" / "ds.parquet", o / "part-00000-1f2e3d4c-0000.snappy.parquet")
        (o / "_stats" / "notes.json").write_text('{"mine": true}\n')
        (o / "_partials").mkdir()
        (o / "_partials" / "keep.txt").write_text("mine\n")

    return setup


def _fifo(name: str):
    return lambda d: os.mkfifo(d / name)


def _apple_double(d: Path) -> None:
    """A macOS metadata file beside a real shard: binary, and named like a JSON shard."""
    _shards(**{"a.json": "mi20.json"})(d)
    (d / "shards" / "._a.json").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(64))


def _rows_written(path: str, expected: int):
    def post(folder: Path, record: dict) -> list[str]:
        if record.get("exit") not in (0, None) and not (folder / path).exists():
            return []
        import pyarrow.parquet as pq

        p = folder / path
        if not p.exists():
            return [f"{path} was not written"]
        # a --ray output is a folder: its rows are the top-level part files (_stats/ and
        # _partials/ hold per-text and per-group sums)
        n = pq.read_metadata(p).num_rows if p.is_file() else sum(
            pq.read_metadata(f).num_rows for f in p.glob("part-*.parquet"))  # fmt: skip
        return [] if n == expected else [f"{path} has {n} rows, the input has {expected}"]

    return post


def _output_says(needle: str, what: str):
    """A silent wrong result shows in the output: ``needle`` must be there (the snippet
    prints what it got)."""

    def post(folder: Path, record: dict) -> list[str]:
        if record.get("exit") not in (0,):
            return []  # refused: not silent
        return [] if needle in record.get("output", "") else [what]

    return post


# -- the HTTP clients ----------------------------------------------------------------------------


def _request(url: str, method: str, path: str, body: bytes | None = None, headers=None,
             timeout: float = 120.0) -> tuple[int | None, str, float]:  # fmt: skip
    """(status, body text, seconds); status None when the connection failed or timed out."""
    u = urlsplit(url)
    start = time.monotonic()
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        text = resp.read().decode("utf-8", "replace")
        return resp.status, text, time.monotonic() - start
    except (OSError, http.client.HTTPException) as exc:
        return None, f"{type(exc).__name__}: {exc}", time.monotonic() - start
    finally:
        conn.close()


def _embed(url: str, texts: list[str], timeout: float = 120.0, raw: bytes | None = None, headers=None):
    body = raw if raw is not None else json.dumps({"texts": texts}).encode()
    return _request(url, "POST", "/embed", body, headers, timeout)


def _in_thread(fn, *args):
    box: dict = {}
    t = threading.Thread(target=lambda: box.setdefault("r", fn(*args)), daemon=True)
    t.start()
    return t, box


def _problems(**kinds: list[str]) -> dict[str, list[str]]:
    return {k: v for k, v in kinds.items() if v}


BIG_TEXT = ("The strings arrived quickly and sound bright on my old acoustic guitar. " * 230)[:16_000]


def _big_then_small(url: str, folder: Path) -> dict:
    """256 texts of 16 KB (the documented limits), then one short text 0.5 s later: the
    short one must not wait for the whole big one."""
    big_t, big = _in_thread(_embed, url, [f"{i} {BIG_TEXT}" for i in range(256)])
    time.sleep(0.5)
    status, text, secs = _embed(url, ["one short review"])
    big_t.join(180)
    out = []
    if status != 200:
        out.append(f"the one-text request got {status}: {text[:150]}")
    elif secs > 10:
        out.append(f"the one-text request waited {secs:.1f} s behind the big one")
    return _problems(server_degraded=out)


def _timed_out_work_is_dropped(url: str, folder: Path) -> dict:
    """Big requests that time out (--request-timeout 2) must stop counting against the queue
    (--max-queue 4) and stop being encoded: a short request after them is answered at once."""
    threads = [_in_thread(_embed, url, [f"{i} {j} {BIG_TEXT}" for i in range(256)]) for j in range(4)]
    for t, _ in threads:
        t.join(60)
    codes = [box.get("r", (None,))[0] for _, box in threads]
    status, text, secs = _embed(url, ["a short review after the timeouts"])
    out = []
    if status != 200:
        out.append(f"after {codes} the one-text request got {status}: {text[:150]}")
    elif secs > 8:
        out.append(f"after {codes} the one-text request waited {secs:.1f} s (abandoned work still encoded)")
    return _problems(server_degraded=out)


def _disconnected_work_is_dropped(url: str, folder: Path) -> dict:
    """Clients that send a big request and hang up: their work must leave the queue."""
    u = urlsplit(url)
    for j in range(6):
        body = json.dumps({"texts": [f"{i} {j} {BIG_TEXT}" for i in range(256)]}).encode()
        with socket.create_connection((u.hostname, u.port)) as s:
            s.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)  # fmt: skip
            time.sleep(0.05)
    time.sleep(0.5)
    status, text, secs = _embed(url, ["a short review after the hang-ups"])
    out = []
    if status != 200:
        out.append(f"the one-text request got {status}: {text[:150]}")
    elif secs > 8:
        out.append(f"the one-text request waited {secs:.1f} s behind work nobody waits for")
    return _problems(server_degraded=out)


def _bad_text_fails_alone(url: str, folder: Path) -> dict:
    """With --cleaners none a lone surrogate reaches the tokenizer, which rejects it. The
    requests batched with it must still get their vectors; the bad one gets a 4xx."""
    bad = b'{"texts": ["fine words", "\\ud800 broken surrogate"]}'
    results: list = []
    threads = []
    for i in range(6):
        if i == 2:
            threads.append(_in_thread(_embed, url, [], 60, bad))
        else:
            threads.append(_in_thread(_embed, url, [f"an innocent review number {i}"]))
    for t, box in threads:
        t.join(90)
        results.append(box.get("r", (None, "no answer", 0)))
    out = []
    for i, (status, text, _) in enumerate(results):
        if i == 2 and not (status is not None and 400 <= status < 500):
            out.append(f"the bad request got {status}: {text[:120]}")
        if i != 2 and status != 200:
            out.append(f"innocent request {i} got {status}: {text[:120]}")
    return _problems(server_degraded=out)


def _stalled_body(url: str, folder: Path) -> dict:
    """A client sends half its body and stops. Others must be served; the stalled one must
    be answered (408) or dropped within a bounded time, not hold its slot forever. The
    harness then sends SIGTERM with the stalled connection still open."""
    u = urlsplit(url)
    stalled = [socket.create_connection((u.hostname, u.port)) for _ in range(3)]
    for s in stalled:
        s.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000\r\n\r\n{\"texts\": [\"half")  # fmt: skip
    out = []
    status, text, secs = _embed(url, ["served beside stalled clients"], timeout=30)
    if status != 200 or secs > 5:
        out.append(f"a request beside stalled clients got {status} after {secs:.1f} s")
    stalled[0].settimeout(60)
    start = time.monotonic()
    try:
        answer = stalled[0].recv(200)
    except OSError as exc:
        answer = f"{type(exc).__name__}".encode()
    waited = time.monotonic() - start
    if not answer.startswith(b"HTTP/1.1 408") and waited > 45:
        out.append(f"a client stalled mid-body was neither answered nor dropped in {waited:.0f} s")
    folder.joinpath(".stalled").write_text("open\n")  # the sockets stay open over SIGTERM
    _STALLED[str(folder)] = stalled
    return _problems(server_degraded=out)


_STALLED: dict[str, list] = {}  # kept open until the server has stopped


def _utf8_body(url: str, folder: Path) -> dict:
    status, text, _ = _embed(url, [], raw=b'{"texts": ["caf\xe9 au lait"]}')
    out = []
    if status != 400 or "utf-8" not in text.lower():
        out.append(f"a Latin-1 body got {status}: {text[:160]} (expected 400 naming UTF-8)")
    return _problems(poor_messages=out)


def _text_plain_json(url: str, folder: Path) -> dict:
    status, text, _ = _embed(url, ["read as JSON"], headers={"Content-Type": "text/plain"})
    return _problems(poor_messages=[] if status == 200 else [f"JSON sent as text/plain got {status}: {text[:160]}"])


def _long_and_bad_ids(url: str, folder: Path) -> dict:
    out = []
    long_id = "x" * 30_000
    status, text, _ = _request(url, "PUT", f"/items/{long_id}", json.dumps({"text": "a"}).encode())
    if status == 200 or status is None:
        out.append(f"a 30 KB item id was accepted ({status})")
    body = b'{"items": [{"id": "caf\xe9", "text": "a"}, {"id": "caf\xe8", "text": "b"}]}'
    status, text, _ = _request(url, "POST", "/items", body)
    if status == 200 or status is None:
        out.append(f"item ids of invalid UTF-8 were accepted ({status}: {text[:120]})")
    body = json.dumps({"items": [{"id": "y" * 30_000 + str(i), "text": "t"} for i in range(3)]}).encode()
    status, text, _ = _request(url, "POST", "/items", body)
    if status == 200 or status is None:
        out.append(f"30 KB item ids were accepted in POST /items ({status})")
    return _problems(silent_corruptions=out)


def _store_is_bounded(url: str, folder: Path) -> dict:
    """Ids are cheap to send: the store must refuse at its cap (--max-items 50 here) with a
    4xx naming the option, not grow without bound."""
    refused = None
    for start in range(0, 400, 50):
        items = [{"id": f"i{n}", "text": "t"} for n in range(start, start + 50)]
        status, text, _ = _request(url, "POST", "/items", json.dumps({"items": items}).encode())
        if status is not None and 400 <= status < 600 and status != 500:
            refused = (status, text)
            break
    if refused is None:
        return _problems(silent_corruptions=["400 items were stored past a cap of 50"])
    return _problems(poor_messages=[] if "max-items" in refused[1].lower() or "max_items" in refused[1].lower()
                     else [f"the full store said {refused[0]}: {refused[1][:160]}"])  # fmt: skip


# -- the cases ------------------------------------------------------------------------------------

PY = "python"

CASES2: list[Case] = [
    # ---- 10: input or earlier output lost --------------------------------------------------------
    Case("journal_evaluate_overwrites_outside", 10, ("evaluate", "ratings.csv", *EV, "--out", "out/res.json"),
         1, (JOURNAL, REFUSED), files=("ratings.csv",), setup=_plant_journal("out"),
         why="a planted journal of a dead pid names a file and a folder outside its own folder"),
    Case("journal_clean_overwrites_outside", 10, ("clean", "texts.txt", "--out", "out/clean.txt"),
         1, (JOURNAL,), files=("texts.txt",), setup=_plant_journal("out")),
    Case("journal_relative_paths_escape", 10, ("evaluate", "ratings.csv", *EV, "--out", "out/res.json"),
         1, (JOURNAL,), files=("ratings.csv",), setup=_plant_journal("out", relative=True)),
    Case("journal_extract_overwrites_outside", 10, ("extract", "mi20.json", "--format", "amazon", *ML,
                                                     "--out", "out/f.parquet"),
         1, (JOURNAL,), files=("mi20.json", "cache"), setup=_plant_journal("out")),
    Case("journal_train_overwrites_outside", 10, ("train", "ratings.csv", "--model", "bias", "--out", "out/m.joblib"),
         1, (JOURNAL,), files=("ratings.csv",), setup=_plant_journal("out")),
    Case("ray_keeps_user_part_files", 10, ("extract", "mi20.json", "--format", "amazon", *ML, *RAY, "--out", "shards_out/"),
         (0, 1, 2), files=("mi20.json", "cache"), setup=_user_files_in("shards_out"),
         why="files that look like shards but were not written by this run"),
    Case("api_extract_file_onto_its_input", 10, ("recfeat.extract_file('mi20.json', 'mi20.json', format='amazon', max_length=16)",),
         2, (("input", "overwrite", "same"),), files=("mi20.json",), mode=PY, slow=True),
    # ---- 11: silent wrong result ----------------------------------------------------------------
    Case("export_manifest_dotdot_file", 11, ("extract", "mi20.json", "--format", "amazon", "--encoder", "exp",
                                             "--no-cache", "--out", "f.parquet"),
         1, (("inside", "outside"),), files=("mi20.json",), setup=_manifest_points_out("dotdot"), silent=True),
    Case("export_manifest_absolute_file", 11, ("extract", "mi20.json", "--format", "amazon", "--encoder", "exp",
                                               "--no-cache", "--out", "f.parquet"),
         1, (("inside", "outside", "absolute"),), files=("mi20.json",), setup=_manifest_points_out("absolute"), silent=True),
    Case("folder_of_json_and_csv", 11, ("extract", "shards", *ML, "--out", "f.parquet"),
         (1, 2), (("csv",), ("json",)), files=("cache",), setup=_shards(**{"a.json": "mi20.json", "b.csv": "ratings.csv"}),
         silent=True, why="reading only one format of the folder drops the other's rows"),
    Case("folder_sub_folder_ray_like_local", 11, ("extract", "shards", "--format", "amazon", *ML, *RAY, "--out", "f.parquet"),
         0, files=("cache",), setup=_shards(**{"a.json": "mi20.json", "sub__b.json": "mi200.json"}),
         post=_rows_written("f.parquet", 20), why="the local engines ignore sub-folders; Ray must too"),
    Case("relevance_threshold_nan", 11, ("evaluate", "ratings.csv", *EV, "--relevance-threshold", "nan"),
         2, ("relevance",), files=("ratings.csv",), silent=True),
    Case("relevance_threshold_inf", 11, ("evaluate", "ratings.csv", *EV, "--relevance-threshold", "inf"),
         2, ("relevance",), files=("ratings.csv",), silent=True),
    Case("api_relevance_threshold_nan", 11, ("recfeat.evaluate('ratings.csv', models='global-mean,bias', relevance_threshold=float('nan'))",),
         2, ("relevance",), files=("ratings.csv",), mode=PY, silent=True),
    Case("api_recommend_one_user_as_string", 11,
         ("b = recfeat.load_model('model.joblib'); r = recfeat.recommend(b, '196', k=3); "
          "print('USERS', sorted({str(getattr(x, 'user', x)) for x in r}))",),
         0, files=(MODEL,), mode=PY, post=_output_says("USERS ['196']", "recommend(bundle, '196') did not rank user '196' alone")),
    Case("serve_item_features_review_level", 11, ("serve", "--port", "0", "--item-features", "feats200.parquet"),
         2, (("item",),), files=("feats200.parquet", "feats200.manifest.json"), timeout=150, silent=True,
         why="review-level vectors served as items recommend reviewer ids"),
    Case("serve_item_features_other_max_length", 11, ("serve", "--port", "0", "--item-features", "items200.parquet"),
         2, (("max_length", "max-length"),), files=("items200.parquet", "items200.manifest.json"), timeout=150, silent=True,
         why="items encoded at --max-length 16 mixed with queries at the encoder's 256 tokens"),
    Case("serve_empty_api_key", 11, ("serve", "--port", "0"), 2, ("api",), env=(("RECFEAT_API_KEY", ""),),
         timeout=150, silent=True, why="an empty key turned authentication off"),
    Case("serve_blank_api_key_flag", 11, ("serve", "--port", "0", "--api-key", "  "), 2, ("api",),
         timeout=150, silent=True),
    Case("http_long_and_invalid_item_ids", 11, (), 0, mode="http", client=_long_and_bad_ids),
    Case("http_item_store_is_bounded", 11, ("--max-items", "50"), 0, mode="http", client=_store_is_bounded),
    # ---- 12: raw exception from the Python API ------------------------------------------------------
    *[Case(f"api_{name}", 12, (code,), exit, frags, files=files, mode=PY)
      for name, code, exit, frags, files in (
        ("extract_none", "recfeat.extract(None)", 2, ("data",), ()),
        ("extract_dataframe_without_columns", "import pandas as pd; recfeat.extract(pd.DataFrame({'x': [1]}))", 2, (("column", "text"),), ()),
        ("evaluate_dataframe_without_columns", "import pandas as pd; recfeat.evaluate(pd.DataFrame({'a': [1]}))", 2, (("column", "rating", "user"),), ()),
        ("evaluate_k_as_string", "recfeat.evaluate('ratings.csv', models='global-mean', k='10')", 2, ("k",), ("ratings.csv",)),
        ("evaluate_k_zero", "recfeat.evaluate('ratings.csv', models='global-mean', k=0)", 2, ("k",), ("ratings.csv",)),
        ("evaluate_models_int", "recfeat.evaluate('ratings.csv', models=5)", 2, ("model",), ("ratings.csv",)),
        ("recommend_empty_dict", "recfeat.recommend({})", 2, (("model", "bundle"),), ()),
        ("recommend_k_negative", "b = recfeat.load_model('model.joblib'); recfeat.recommend(b, ['196'], k=-3)", 2, ("k",), (MODEL,)),
        ("recommend_user_none", "b = recfeat.load_model('model.joblib'); recfeat.recommend(b, [None])", 2, ("user",), (MODEL,)),
        ("save_model_empty_dict", "recfeat.save_model({}, 'm.joblib')", 2, (("model", "bundle"),), ()),
        ("load_model_none", "recfeat.load_model(None)", 2, (("path", "model"),), ()),
        ("load_model_folder", "recfeat.load_model('.')", (1, 2), (("folder", "directory"),), ()),
        ("load_dataset_int", "recfeat.load_dataset(42)", 2, (("path", "dataset"),), ()),
        ("make_split_none", "recfeat.make_split(None)", 2, (("interactions", "data"),), ()),
        ("read_features_none", "recfeat.read_features(None)", 2, (("path", "features"),), ()),
        ("train_options_string", "recfeat.train('ratings.csv', model='bias', options='x')", 2, ("option",), ("ratings.csv",)),
        ("train_model_none", "recfeat.train('ratings.csv', model=None)", 2, ("model",), ("ratings.csv",)),
        ("cleaner_chain_int", "recfeat.cleaner_chain(5)", 2, ("cleaner",), ()),
        ("detect_format_none", "recfeat.detect_format(None)", 2, (("path", "file"),), ()),
        ("dataset_info_int", "recfeat.dataset_info(3.5)", 2, (("path", "dataset"),), ()),
        ("validate_config_int", "recfeat.validate_config(5)", 2, ("config",), ()),
        ("encoder_int", "recfeat.encoder(5)", 2, ("encoder",), ()),
        ("extract_file_none", "recfeat.extract_file(None, 'o.parquet')", 2, (("path", "input", "data"),), ()),
        ("write_sample_int", "recfeat.write_sample(5)", 2, (("folder", "out", "path"),), ()),
    )],  # fmt: skip
    # ---- 13: hang without a message -------------------------------------------------------------
    Case("serve_batch_window_inf", 13, ("serve", "--port", "0", "--batch-window-ms", "inf"), 2, ("batch-window",),
         timeout=150),
    Case("serve_request_timeout_nan", 13, ("serve", "--port", "0", "--request-timeout", "nan"), 2, ("request-timeout",),
         timeout=150),
    Case("ray_actors_400", 13, ("extract", "mi20.json", "--format", "amazon", *ML, *RAY, "--actors", "400", "--out", "o/"),
         2, ("actors",), files=("mi20.json", "cache"), timeout=120),
    Case("ray_cpus_per_actor_64", 13, ("extract", "mi20.json", "--format", "amazon", *ML, *RAY, "--cpus-per-actor", "64",
                                       "--out", "o/"),
         2, ("cpus-per-actor",), files=("mi20.json", "cache"), timeout=120),
    Case("ray_address_not_ray", 13, ("extract", "mi20.json", "--format", "amazon", *ML, "--ray", "--ray-address", "{NOT_RAY}",
                                     "--out", "o/"),
         (1, 2), ("ray",), files=("mi20.json", "cache"), timeout=120,
         why="a port that accepts TCP but is not a Ray head"),
    Case("fifo_input", 13, ("extract", "pipe.json", "--format", "amazon", *ML, "--out", "f.parquet"),
         (1, 2), (("fifo", "pipe", "not a regular file"),), files=("cache",), setup=_fifo("pipe.json"), timeout=120),
    Case("fifo_ratings", 13, ("evaluate", "pipe.csv", *EV), (1, 2), (("fifo", "pipe", "not a regular file"),),
         setup=_fifo("pipe.csv"), timeout=60),
    # ---- 14: server degraded for other clients ----------------------------------------------------
    Case("http_big_request_then_small", 14, (), 0, mode="http", client=_big_then_small),
    Case("http_timed_out_work_dropped", 14, ("--request-timeout", "2", "--max-queue", "4"), 0, mode="http",
         client=_timed_out_work_is_dropped),
    Case("http_disconnected_work_dropped", 14, ("--max-queue", "4"), 0, mode="http", client=_disconnected_work_is_dropped),
    Case("http_bad_text_fails_alone", 14, ("--cleaners", "none", "--batch-window-ms", "50"), 0, mode="http",
         client=_bad_text_fails_alone),
    Case("http_stalled_body", 14, ("--request-timeout", "5"), 0, mode="http", client=_stalled_body, shutdown_s=25),
    # ---- 15: partial output left ------------------------------------------------------------------
    Case("ray_failed_run_leaves_no_folders", 15, ("extract", "shards", "--format", "amazon", *ML, *RAY, "--out", "o/"),
         1, files=("cache",), setup=_shards(**{"a.json": "mi20.json", "b.json": "{not json at all\n"}), timeout=150),
    Case("ray_unplaceable_leaves_no_folders", 15, ("extract", "mi20.json", "--format", "amazon", *ML, *RAY,
                                                   "--cpus-per-actor", "64", "--out", "deep/o/"),
         2, files=("mi20.json", "cache"), timeout=120),
    Case("api_save_model_bad_bundle_no_file", 15, ("recfeat.save_model({'header': {}}, 'm.joblib')",), 2,
         (("model", "bundle"),), mode=PY),
    # ---- 16: poor message -----------------------------------------------------------------------
    Case("apple_double_beside_shard", 16, ("extract", "shards", "--format", "amazon", *ML, "--out", "f.parquet"),
         0, files=("cache",), setup=_apple_double, post=_rows_written("f.parquet", 20)),
    Case("http_non_utf8_body", 16, (), 0, mode="http", client=_utf8_body),
    Case("http_json_as_text_plain", 16, (), 0, mode="http", client=_text_plain_json),
    Case("extract_empty_file_message", 16, ("extract", "empty.json", "--format", "amazon", *ML, "--out", "f.parquet"),
         1, (("empty",),), files=("cache",), setup=_write("empty.json", "")),
]
