"""The attack table of issue 11: hostile inputs, CLI misuse, faults and tampered artefacts.

Each :class:`Case` is one ``recfeat`` invocation (argv after ``recfeat``) run in a fresh
folder that holds copies of the files it names from the *base* folder, plus what its
``setup`` makes there. The base folder is built once per code tree by :func:`build_base`
with the very code under test (small slices of the real datasets in ../shared/data, a
review- and an item-level features file, an ONNX export, a saved model, a saved split), so a
"before" and an "after" run each attack artefacts their own version wrote.

What every case checks (run_attack.py): exit code, message fragments (each a string or a
tuple of alternatives, case-insensitive), one ``Error`` line on failure, no traceback, no
"please report" fallback message, sha256 of every file present before the command unchanged,
no stray temporary file, no new file when the command failed, no terminal control
characters in the output, and the ran-code marker absent. ``post`` adds a case's own checks
(vectors, byte-identity); a failed ``post`` or a ``silent`` case that exits 0 is a *silent
corruption*: wrong data accepted without a word.

This module imports no recfeat code: the harness process may be a different tree from the
one under attack. Data files are written with the standard library, numpy and pyarrow.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import pickle
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("RECFEAT_DATA_DIR", REPO.parent / "shared" / "data"))
MI = DATA / "amazon_musical_instruments_5" / "reviews_Musical_Instruments_5.json.gz"
APPLIANCES = DATA / "amazon_appliances_5" / "Appliances_5.json.gz"
ML_UDATA = DATA / "movielens_100k" / "u.data"

MARKER = "PWNED"  # a hostile pickle writes this file into the case folder when it runs
ML = ("--max-length", "16")  # every extraction uses it, so the base cache serves the texts
ESC = "\x1b[31m"  # a terminal escape (red) planted in hostile text
DEAD_PID = 4_000_000  # above the kernel's pid_max (32768 here, at most 4194304): never live


# -- the table's vocabulary -------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    cls: int  # the class 1..9 (see CLASSES)
    argv: tuple[str, ...]
    exit: int | tuple[int, ...]
    fragments: tuple = ()  # each: a string, or a tuple of alternatives
    files: tuple[str, ...] = ()  # base files / folders copied into the case folder
    setup: Callable[[Path], None] | None = None
    pre: tuple[tuple[str, ...], ...] = ()  # recfeat runs (same tree) that make earlier outputs
    post: Callable[[Path, dict], list[str]] | None = None
    mode: str = "run"  # run | pipe_head | concurrent
    stdout_to: str | None = None  # e.g. /dev/full
    as_nobody: bool = False  # run as uid 65534 (root ignores file permissions)
    tmpfs_kb: int = 0  # mount a tmpfs of this size at ./full before setup
    silent: bool = False  # exit 0 here = wrong data accepted (a silent corruption)
    may_change: tuple[str, ...] = ()  # earlier files the command may replace on success
    slow: bool = False
    timeout: int = 0  # seconds; 0: 90 for a fast case, 400 for one that loads a model
    why: str = ""
    env: tuple[tuple[str, str], ...] = ()  # extra environment (set after RECFEAT_* is cleared)
    # mode "http": argv are `serve` options; client(url, folder) -> {kind: [problem, ...]}
    client: Callable[[str, Path], dict] | None = None
    shutdown_s: int = 60  # mode "http": seconds the server may take to stop after SIGTERM

    @property
    def limit(self) -> int:
        # generous on purpose: on a shared 2-core machine one model load can take a minute;
        # a real hang still shows, and a slow case is not a hang
        return self.timeout or (90 if is_fast(self) else 400)

    @property
    def expected(self) -> tuple[int, ...]:
        return self.exit if isinstance(self.exit, tuple) else (self.exit,)


CLASSES = {
    1: "output overwrites an input",
    2: "export folder integrity",
    3: "model files run code",
    4: "outputs not byte-identical",
    5: "multi-file outputs not all-or-nothing",
    6: "unexpected-error messages",
    7: "wrong inputs accepted",
    8: "terminal escapes printed raw",
    9: "config schema",
}


# -- base files (built once per tree) ---------------------------------------------------------


def _lines(path: Path, n: int, skip: int = 0) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return list(itertools.islice(fh, skip, skip + n))


def write_data_files(base: Path) -> None:
    """Tiny real inputs: Musical Instruments / Appliances reviews, MovieLens ratings."""
    base.mkdir(parents=True, exist_ok=True)
    mi = _lines(MI, 300)
    (base / "mi20.json").write_text("".join(mi[:20]), encoding="utf-8")
    (base / "mi200.json").write_text("".join(mi[:200]), encoding="utf-8")
    (base / "mi300.json").write_text("".join(mi[:300]), encoding="utf-8")
    (base / "appl100.json").write_text("".join(_lines(APPLIANCES, 100)), encoding="utf-8")
    texts = [json.loads(line)["reviewText"].replace("\n", " ") for line in mi[:200]]
    (base / "texts.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    (base / "big.txt").write_text("\n".join(texts * 100) + "\n", encoding="utf-8")
    rows = ML_UDATA.read_text().splitlines()[:3000]
    (base / "ratings.csv").write_text(
        "user,item,rating,timestamp\n" + "".join(",".join(r.split("\t")) + "\n" for r in rows)
    )
    import pyarrow as pa
    import pyarrow.parquet as pq

    objs = [json.loads(line) for line in mi[:20]]
    table = pa.table({
        "user": [o["reviewerID"] for o in objs], "item": [o["asin"] for o in objs],
        "rating": [float(o["overall"]) for o in objs], "text": [o["reviewText"] for o in objs],
    })  # fmt: skip
    pq.write_table(table, base / "ds.parquet")


# (what a step makes, the recfeat command that makes it); a run builds only the steps whose
# outputs its cases use. The two extractions also fill base/cache, which extract cases copy.
BASE_STEPS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("model.joblib",), ("train", "ratings.csv", "--model", "bias", "--out", "model.joblib")),
    (("split.json", "res.json"), ("evaluate", "ratings.csv", "--models", "global-mean,bias", "--save-split", "split.json", "--out", "res.json")),
    (("feats200.parquet", "feats200.manifest.json", "cache"),
     ("extract", "mi200.json", "--format", "amazon", "--level", "review", *ML, "--out", "feats200.parquet")),
    (("items200.parquet", "items200.manifest.json"),
     ("extract", "mi200.json", "--format", "amazon", "--level", "item", *ML, "--out", "items200.parquet")),
    (("exp",), ("export", "--encoder", "minilm", *ML, "--out", "exp")),
    (("ref_exp20.parquet",), ("extract", "mi20.json", "--format", "amazon", "--encoder", "exp", "--no-cache", "--out", "ref_exp20.parquet")),
)  # fmt: skip
HEAVY = ("extract", "export", "serve")  # commands that load a language model: seconds to minutes each


def uses(case: Case) -> set[str]:
    """Base files a case copies (its ``files``, plus names its setup lambda copies from _base)."""
    names = set(case.files)
    code = getattr(case.setup, "__code__", None)
    if code is not None:
        names |= {c for c in code.co_consts if isinstance(c, str)}
    return names


def steps_for(cases) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """The base steps those cases need, with the steps those depend on (ref_exp20 needs exp)."""
    wanted = set().union(*(uses(c) for c in cases)) if cases else set()
    if "ref_exp20.parquet" in wanted:
        wanted.add("exp")
    return [s for s in BASE_STEPS if wanted & set(s[0])]


def is_fast(case: Case) -> bool:
    """No language model anywhere: neither the case's commands nor the base files it uses."""
    heavy_files = {o for outs, argv in BASE_STEPS if argv[0] in HEAVY for o in outs}
    commands = [case.argv, *case.pre]
    return (not case.slow and case.mode != "http" and not any(a and a[0] in HEAVY for a in commands)
            and not (uses(case) & heavy_files))  # fmt: skip


# -- helpers the setups use -------------------------------------------------------------------


def _edit_json(path: Path, fn) -> None:
    obj = json.loads(path.read_text())
    fn(obj)
    path.write_text(json.dumps(obj, indent=2))


def _rewrite_features(path: Path, *, meta=None, vectors=None, drop_meta=False) -> None:
    """Rewrite a features Parquet: edit its recfeat metadata and/or replace the vectors."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    md = dict(table.schema.metadata or {})
    if vectors is not None:
        col = table.column("vector").combine_chunks()
        dim = col.type.list_size
        vecs = col.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)
        new = np.asarray(vectors(vecs.copy()), dtype=np.float32)
        arr = pa.FixedSizeListArray.from_arrays(pa.array(new.reshape(-1)), new.shape[1])
        table = table.set_column(table.column_names.index("vector"), "vector", arr)
    if meta is not None:
        m = json.loads(md[b"recfeat"])
        meta(m)
        md[b"recfeat"] = json.dumps(m).encode()
    if drop_meta:
        md.pop(b"recfeat", None)
    table = table.replace_schema_metadata(md)
    pq.write_table(table, path)
    side = path.with_suffix(".manifest.json")
    if drop_meta and side.exists():
        side.unlink()
    elif meta is not None and side.exists():
        _edit_json(side, meta)


def _vectors(path: Path):
    import numpy as np
    import pyarrow.parquet as pq

    col = pq.read_table(path).column("vector").combine_chunks()
    return col.flatten().to_numpy(zero_copy_only=False).reshape(-1, col.type.list_size).astype(np.float32)


class _Evil:
    """Unpickling this runs code: it writes the marker file (nothing worse)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('code ran')",))


def _evil_pickle(name: str, valid_header: bool = True):
    def setup(d: Path) -> None:
        bundle = {"format": "recfeat-model", "model": _Evil(d / MARKER)}
        if valid_header:
            bundle["header"] = {"model": "bias", "users": 1, "items": 1, "interactions": 1}
        (d / name).write_bytes(pickle.dumps(bundle, protocol=4))

    return setup


def _write(name: str, text: str, mode: str = "w"):
    def setup(d: Path) -> None:
        p = d / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if mode == "wb":
            p.write_bytes(text)  # type: ignore[arg-type]
        else:
            p.write_text(text, encoding="utf-8")

    return setup


def _all(*fns):
    def setup(d: Path) -> None:
        for fn in fns:
            fn(d)

    return setup


def _mkdir(*names: str):
    def setup(d: Path) -> None:
        for n in names:
            (d / n).mkdir(parents=True, exist_ok=True)

    return setup


def _readonly_dir(name: str):
    def setup(d: Path) -> None:
        (d / name).mkdir(exist_ok=True)
        os.chmod(d / name, 0o555)

    return setup


def _json_lines_edit(src: str, dst: str, fn):
    """dst: the JSON-lines file src with ``fn(obj, i)`` applied to every object."""

    def setup(d: Path) -> None:
        out = []
        for i, line in enumerate((d / src).read_text(encoding="utf-8").splitlines()):
            obj = json.loads(line)
            fn(obj, i)
            out.append(json.dumps(obj))
        (d / dst).write_text("\n".join(out) + "\n", encoding="utf-8")

    return setup


def _csv_edit(src: str, dst: str, fn):
    def setup(d: Path) -> None:
        lines = (d / src).read_text().splitlines()
        (d / dst).write_text("\n".join(fn(lines)) + "\n")

    return setup


def _tamper_export(fn):
    def setup(d: Path) -> None:
        fn(d / "exp")

    return setup


def _swap_vocab(exp: Path) -> None:
    # "good" and "bad" trade ids: every text still tokenises, the vectors silently change.
    vocab = (exp / "vocab.txt").read_text(encoding="utf-8").split("\n")
    i, j = vocab.index("good"), vocab.index("bad")
    vocab[i], vocab[j] = vocab[j], vocab[i]
    (exp / "vocab.txt").write_text("\n".join(vocab), encoding="utf-8")  # tokenizer.json untouched


def _edit_tokenizer_config(exp: Path) -> None:
    _edit_json(exp / "tokenizer_config.json", lambda c: c.update(do_lower_case=False, model_max_length=4))


def _edit_special_tokens(exp: Path) -> None:
    _edit_json(exp / "special_tokens_map.json", lambda c: c.update(cls_token="[SEP]"))


def _add_added_tokens(exp: Path) -> None:
    (exp / "added_tokens.json").write_text(json.dumps({"guitar": 30522, "strings": 30523}))


def _flip_model_bytes(exp: Path) -> None:
    p = exp / "model.onnx"
    data = bytearray(p.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 64] = bytes(64)
    p.write_bytes(bytes(data))


def _manifest_drop(key: str):
    def fn(exp: Path) -> None:
        _edit_json(exp / "manifest.json", lambda m: m.pop(key, None))

    return fn


def _same_vectors_as(ref: str, out: str):
    """post: the vectors in ``out`` equal the reference ones bit for bit."""

    def post(d: Path, result: dict) -> list[str]:
        p = d / out
        if not p.exists():
            return [f"{out} was not written"]
        a, b = _vectors(d / ref), _vectors(p)
        if a.shape != b.shape or a.tobytes() != b.tobytes():
            import numpy as np

            worst = float(np.abs(a - b).max()) if a.shape == b.shape else float("nan")
            return [f"{out} differs from a clean run (max abs diff {worst:.3g}): cache poisoned"]
        return []

    return post


def _identical(a: str, b: str, cached: int | None = None):
    """post: two outputs of the same job are byte-identical (Parquet and manifest counts);
    ``cached``: how many texts ``a``'s run must have read from the cache (so the comparison
    is really cache against fresh)."""

    def post(d: Path, result: dict) -> list[str]:
        pa_, pb = d / a, d / b
        if not (pa_.exists() and pb.exists()):
            return [f"missing output: {a if not pa_.exists() else b}"]
        problems = []
        if pa_.read_bytes() != pb.read_bytes():
            problems.append(f"{a} and {b} are not byte-identical")
        ma, mb = (json.loads(p.with_suffix(".manifest.json").read_text()) for p in (pa_, pb))
        for key in ("truncated_texts", "tokens_dropped", "empty_texts", "rows", "dim"):
            if ma.get(key) != mb.get(key):
                problems.append(f"manifest {key}: {ma.get(key)} vs {mb.get(key)}")
        if cached is not None:
            got = json.loads(pa_.with_suffix(".run.json").read_text()).get("cached_texts")
            if got != cached:
                problems.append(f"{a}: {got} texts from the cache, expected {cached}")
        return problems

    return post


def _no_stale_tmp(folder: str):
    def post(d: Path, result: dict) -> list[str]:
        stale = [p.name for p in d.iterdir() if p.name.startswith((f".{folder}.", ".recfeat-tmp."))]
        return [f"stale temporary folders left: {stale}"] if stale else []

    return post


def _fill_tmpfs(keep_free_kb: int, *earlier: tuple[str, str]):
    """Copy earlier outputs (base name -> path under full/) into the tmpfs, then fill it up
    so only ``keep_free_kb`` stay free."""

    def setup(d: Path) -> None:
        full = d / "full"
        for src, dst in earlier:
            target = full / dst
            if (d / src).is_dir():
                shutil.copytree(d / src, target)
            else:
                shutil.copy2(d / src, target)
        st = os.statvfs(full)
        free = st.f_bavail * st.f_frsize - keep_free_kb * 1024
        if free > 0:
            with open(full / "filler.bin", "wb") as fh:
                fh.write(b"\0" * free)

    return setup


def _dataset_with_text(texts: list[str], name: str = "esc.csv"):
    def setup(d: Path) -> None:
        rows = ["user,item,rating,text"]
        for i, t in enumerate(texts * 10):
            rows.append(f"u{i % 7},i{i % 11},{1 + i % 5},\"{t}\"")  # 11 items: none has seen all
        (d / name).write_text("\n".join(rows) + "\n", encoding="utf-8")

    return setup


# -- the table --------------------------------------------------------------------------------

EV = ("--models", "global-mean,bias")  # the fast models: evaluation in a second or two
OVERWRITE = ("input", "overwrite", "same file", "same path", "would replace", "would destroy")
DISK_FULL = ("disk full", "no space")
FOLDER = ("folder", "directory")
INTEGRITY = ("sha256", "checksum", "modified", "edited", "changed", "tampered", "integrity", "does not match", "not listed", "unexpected file")
PICKLE = ("pickle", "--trust", "trust")
NONFINITE = ("finite", "nan", "inf")
PERMISSION = ("permission",)

CASES: list[Case] = [
    # ---- 1: an output onto an input ---------------------------------------------------------
    Case("extract_out_is_input_parquet", 1, ("extract", "ds.parquet", "--format", "parquet", *ML, "--out", "ds.parquet"),
         2, ("ds.parquet", OVERWRITE), files=("ds.parquet", "cache")),
    Case("extract_manifest_onto_input", 1, ("extract", "reviews.manifest.json", "--format", "amazon", *ML, "--out", "reviews.parquet"),
         2, ("reviews.manifest.json", OVERWRITE), files=("cache",),
         setup=lambda d: shutil.copy(d.parent / "_base" / "mi20.json", d / "reviews.manifest.json"),
         why="the sidecar manifest of --out is the input file"),
    Case("extract_out_is_train_table", 1, ("extract", "mi20.json", "--format", "amazon", "--level", "item", *ML,
                                           "--train", "train.parquet", "--out", "train.parquet"),
         2, ("train.parquet", OVERWRITE), files=("mi20.json", "cache"),
         setup=lambda d: shutil.copy(d / "mi20.json", d / "train.jsonl") or _train_parquet(d)),
    Case("train_out_is_input_csv", 1, ("train", "ratings.csv", "--model", "bias", "--out", "ratings.csv"),
         2, ("ratings.csv", OVERWRITE), files=("ratings.csv",)),
    Case("train_out_is_features", 1, ("train", "mi200.json", "--format", "amazon", "--model", "content",
                                      "--features", "feats200.parquet", "--out", "feats200.parquet"),
         2, ("feats200.parquet", OVERWRITE), files=("mi200.json", "feats200.parquet", "feats200.manifest.json")),
    Case("evaluate_save_split_onto_input", 1, ("evaluate", "ratings.csv", *EV, "--save-split", "ratings.csv"),
         2, ("ratings.csv", OVERWRITE), files=("ratings.csv",)),
    Case("evaluate_out_onto_input", 1, ("evaluate", "ratings.csv", *EV, "--out", "ratings.csv"),
         2, ("ratings.csv", OVERWRITE), files=("ratings.csv",)),
    Case("evaluate_plot_onto_input", 1, ("evaluate", "ratings.csv", *EV, "--plot", "ratings.csv"),
         2, ("ratings.csv", OVERWRITE), files=("ratings.csv",)),
    Case("evaluate_out_onto_features", 1, ("evaluate", "mi200.json", "--format", "amazon", "--models", "content",
                                           "--features", "feats200.parquet", "--out", "feats200.parquet"),
         2, ("feats200.parquet", OVERWRITE), files=("mi200.json", "feats200.parquet", "feats200.manifest.json")),
    Case("evaluate_save_split_onto_load_split_other", 1, ("evaluate", "ratings.csv", *EV, "--load-split", "split.json",
                                                          "--out", "split.json"),
         2, ("split.json", OVERWRITE), files=("ratings.csv", "split.json")),
    Case("evaluate_out_and_plot_same_path", 1, ("evaluate", "ratings.csv", *EV, "--out", "r.out", "--plot", "r.out"),
         2, ("r.out",), files=("ratings.csv",), why="two outputs, one path: one silently replaces the other"),
    Case("clean_out_is_input", 1, ("clean", "texts.txt", "--out", "texts.txt"),
         2, ("texts.txt", OVERWRITE), files=("texts.txt",)),
    Case("clean_out_is_input_via_symlink", 1, ("clean", "link.txt", "--out", "texts.txt"),
         2, ("texts.txt", OVERWRITE), files=("texts.txt",),
         setup=lambda d: os.symlink("texts.txt", d / "link.txt")),
    Case("train_out_is_user_features", 1, ("train", "mi200.json", "--format", "amazon", "--model", "bias",
                                           "--user-features", "feats200.parquet", "--out", "feats200.parquet"),
         2, ("feats200.parquet", OVERWRITE), files=("mi200.json", "feats200.parquet", "feats200.manifest.json")),
    Case("data_sample_refuses_existing", 1, ("data", "sample", "s"), 2, ("--force",),
         setup=_write("s/books.csv", "keep me\n")),
    Case("export_force_over_calibration_folder", 1, ("export", "--encoder", "minilm", *ML, "--out", "cal", "--force",
                                                     "--calibration", "cal/texts.txt"),
         2, ("cal", OVERWRITE), setup=lambda d: (d / "cal").mkdir() or shutil.copy(d.parent / "_base" / "texts.txt", d / "cal" / "texts.txt"),
         slow=True, why="--force replaces the folder that holds the calibration input"),
    # ---- 2: export folder integrity (every file verified, cache never poisoned) -------------
    Case("export_vocab_edited", 2, ("extract", "mi20.json", "--format", "amazon", "--encoder", "exp", "--no-cache", "--out", "f.parquet"),
         1, ("vocab.txt", INTEGRITY), files=("mi20.json", "exp"), setup=_tamper_export(_swap_vocab), silent=True),
    Case("export_tokenizer_config_edited", 2, ("extract", "mi20.json", "--format", "amazon", "--encoder", "exp", "--no-cache", "--out", "f.parquet"),
         1, ("tokenizer_config.json", INTEGRITY), files=("mi20.json", "exp"), setup=_tamper_export(_edit_tokenizer_config), silent=True),
    Case("export_special_tokens_edited", 2, ("extract", "mi20.json", "--format", "amazon", "--encoder", "exp", "--no-cache", "--out", "f.parquet"),
         1, ("special_tokens_map.json", INTEGRITY), files=("mi20.json", "exp"), setup=_tamper_export(_edit_special_tokens), silent=True),
    Case("export_added_tokens_planted", 2, ("extract", "mi20.json", "--format", "amazon", "--encoder", "exp", "--no-cache", "--out", "f.parquet"),
         1, ("added_tokens.json", INTEGRITY), files=("mi20.json", "exp"), setup=_tamper_export(_add_added_tokens), silent=True,
         why="a file the manifest does not list changes tokenisation"),
    Case("export_model_bytes_flipped", 2, ("extract", "mi20.json", "--format", "amazon", "--encoder", "exp", "--no-cache", "--out", "f.parquet"),
         1, ("model.onnx", INTEGRITY), files=("mi20.json", "exp"), setup=_tamper_export(_flip_model_bytes), silent=True),
    Case("export_tokenizer_json_deleted", 2, ("extract", "mi20.json", "--format", "amazon", "--encoder", "exp", "--no-cache", "--out", "f.parquet"),
         1, ("tokenizer.json",), files=("mi20.json", "exp"), setup=_tamper_export(lambda e: (e / "tokenizer.json").unlink())),
    Case("export_tampered_copy_poisons_cache", 2, ("extract", "mi20.json", "--format", "amazon", "--encoder", "exp", "--out", "f.parquet"),
         0, (), files=("mi20.json", "exp", "ref_exp20.parquet"),
         setup=lambda d: (shutil.copytree(d / "exp", d / "bad"), _swap_vocab(d / "bad"), _add_added_tokens(d / "bad"),
                          _edit_tokenizer_config(d / "bad"), _edit_special_tokens(d / "bad")),
         pre=(("extract", "mi20.json", "--format", "amazon", "--encoder", "bad", "--out", "poison.parquet"),),
         post=_same_vectors_as("ref_exp20.parquet", "f.parquet"), slow=True,
         why="a tampered copy of the export ran first into the same cache; the pristine folder must get clean vectors"),
    Case("export_verify_option_edited_manifest", 2, ("extract", "mi20.json", "--format", "amazon", "--encoder", "exp", "--no-cache", "--out", "f.parquet"),
         1, ("manifest", ("max_length", "tokenizer")), files=("mi20.json", "exp"),
         setup=_tamper_export(lambda e: _edit_json(e / "manifest.json", lambda m: m["tokenizer"].update(sha256="0" * 64))),
         silent=True),
    # ---- 3: model files must not run code ---------------------------------------------------
    Case("recommend_hostile_pickle", 3, ("recommend", "evil.joblib", "--users", "196"), (1, 2), (PICKLE,),
         setup=_evil_pickle("evil.joblib")),
    Case("recommend_hostile_pickle_bad_header", 3, ("recommend", "evil.joblib", "--users", "196"), (1, 2), (PICKLE,),
         setup=_evil_pickle("evil.joblib", valid_header=False)),
    Case("recommend_hostile_pickle_other_name", 3, ("recommend", "model.bin", "--users", "196"), (1, 2), ("model.bin",),
         setup=_evil_pickle("model.bin"), why="a pickle renamed to any extension"),
    Case("recommend_hostile_pickle_gz", 3, ("recommend", "evil.joblib", "--users", "196"), (1, 2), ("evil.joblib",),
         setup=lambda d: (_evil_pickle("raw.pkl")(d), (d / "evil.joblib").write_bytes(gzip.compress((d / "raw.pkl").read_bytes())),
                          (d / "raw.pkl").unlink())),
    Case("recommend_saved_model_works", 3, ("recommend", "model.joblib", "--users", "196", "--k", "3"), 0, ("196",),
         files=("model.joblib",), why="the model recfeat train wrote loads without --trust"),
    Case("recommend_truncated_model", 3, ("recommend", "m.joblib", "--users", "196"), 1, ("m.joblib",),
         files=("model.joblib",), setup=lambda d: (d / "m.joblib").write_bytes((d / "model.joblib").read_bytes()[:200])),
    Case("recommend_model_is_json", 3, ("recommend", "res.json", "--users", "196"), 1, ("res.json",), files=("res.json",)),
    # ---- 4: byte-identical outputs ----------------------------------------------------------
    Case("extract_fresh_vs_cached_identical", 4, ("extract", "mi20.json", "--format", "amazon", *ML, "--out", "b.parquet"),
         0, (), files=("mi20.json",), pre=(("extract", "mi20.json", "--format", "amazon", *ML, "--out", "a.parquet"),),
         post=_identical("a.parquet", "b.parquet"), slow=True, why="first run encodes, second reads the cache"),
    Case("extract_other_folder_identical", 4, ("extract", "mi20.json", "--format", "amazon", *ML, "--out", "two/deep/b.parquet"),
         0, (), files=("mi20.json", "cache"), pre=(("extract", "mi20.json", "--format", "amazon", *ML, "--out", "one/a.parquet"),),
         post=_identical("one/a.parquet", "two/deep/b.parquet"), slow=True, why="paths must not enter the file"),
    Case("extract_nocache_vs_cache_identical", 4, ("extract", "mi20.json", "--format", "amazon", *ML, "--no-cache", "--out", "b.parquet"),
         0, (), files=("mi20.json", "cache"), pre=(("extract", "mi20.json", "--format", "amazon", *ML, "--out", "a.parquet"),),
         post=_identical("a.parquet", "b.parquet", cached=20), slow=True),
    Case("extract_other_input_cache_identical", 4, ("extract", "mi20.json", "--format", "amazon", "--config", "od.toml", "--no-cache", "--out", "b.parquet"),
         0, (), files=("mi20.json", "mi200.json"), setup=_write("od.toml", '[encoder]\nuse = "minilm"\nonednn = true\n'),
         pre=(("extract", "mi200.json", "--format", "amazon", "--config", "od.toml", "--out", "big.parquet"),
              ("extract", "mi20.json", "--format", "amazon", "--config", "od.toml", "--out", "a.parquet")),
         post=_identical("a.parquet", "b.parquet", cached=20), slow=True,
         why="a cache filled by another input (texts of every length, batched with others) on the oneDNN path"),
    # ---- 5: all-or-nothing multi-file outputs -----------------------------------------------
    Case("evaluate_plot_fails_json_kept", 5, ("evaluate", "ratings.csv", *EV, "--out", "res.json", "--plot", "afile/x.png"),
         (1, 2), ("afile",), files=("ratings.csv", "res.json"), setup=_write("afile", "not a folder\n"),
         why="the PNG cannot be written; the earlier res.json must stay"),
    Case("extract_token_features_fail_parquet_kept", 5, ("extract", "mi20.json", "--format", "amazon", *ML,
                                                         "--token-features", "hashed-bow", "--out", "f.parquet"),
         (1, 2), ("f.tokens.npz",), files=("mi20.json", "cache"),
         setup=lambda d: (d / "f.tokens.npz").mkdir(),
         pre=(("extract", "mi20.json", "--format", "amazon", *ML, "--out", "f.parquet"),), slow=True),
    Case("export_stale_tmp_cleaned", 5, ("export", "--encoder", "minilm", *ML, "--out", "exp2"), 0, (),
         setup=_mkdir(f".recfeat-tmp.{DEAD_PID}.0badf00d.exp2/sub"), post=_no_stale_tmp("exp2"), slow=True,
         may_change=(f".recfeat-tmp.{DEAD_PID}.0badf00d.exp2",),
         why="a killed export left its build folder (named as core/atomic.py names them: prefix + dead pid)"),
    Case("export_half_made_folder_not_loadable", 5, ("extract", "mi20.json", "--format", "amazon", "--encoder", ".exp.x1.tmp", "--no-cache", "--out", "f.parquet"),
         1, (".exp.x1.tmp",), files=("mi20.json", "exp"),
         setup=lambda d: (shutil.copytree(d / "exp", d / ".exp.x1.tmp"), (d / ".exp.x1.tmp" / "model.onnx").write_bytes(b"half")),
         why="a folder a killed export left behind must not load"),
    Case("extract_concurrent_same_out", 5, ("extract", "mi20.json", "--format", "amazon", *ML, "--out", "f.parquet"),
         (0, 1), (), files=("mi20.json", "cache"), mode="concurrent", slow=True),
    Case("evaluate_concurrent_same_out", 5, ("evaluate", "ratings.csv", *EV, "--out", "r.json", "--save-split", "s.json"),
         (0, 1), (), files=("ratings.csv",), mode="concurrent"),
    Case("clean_stdout_disk_full", 5, ("clean", "texts.txt"), 1, (DISK_FULL,), files=("texts.txt",), stdout_to="/dev/full"),
    Case("evaluate_json_stdout_disk_full", 5, ("evaluate", "ratings.csv", *EV, "--json"), 1, (DISK_FULL,), files=("ratings.csv",),
         stdout_to="/dev/full"),
    Case("clean_disk_full_tmpfs", 5, ("clean", "big.txt", "--out", "full/clean.txt"), 1, (DISK_FULL,),
         files=("big.txt", "texts.txt"), tmpfs_kb=1024, setup=_fill_tmpfs(64, ("texts.txt", "clean.txt"))),
    Case("evaluate_disk_full_tmpfs", 5, ("evaluate", "ratings.csv", *EV, "--out", "full/res.json", "--plot", "full/res.png"),
         1, (DISK_FULL,), files=("ratings.csv", "res.json"), tmpfs_kb=1024, setup=_fill_tmpfs(4, ("res.json", "res.json"))),
    Case("train_disk_full_tmpfs", 5, ("train", "ratings.csv", "--model", "bias", "--out", "full/model.joblib"),
         1, (DISK_FULL,), files=("ratings.csv", "model.joblib"), tmpfs_kb=1024,
         setup=_fill_tmpfs(8, ("model.joblib", "model.joblib"))),
    Case("extract_disk_full_tmpfs", 5, ("extract", "mi200.json", "--format", "amazon", *ML, "--out", "full/f.parquet"),
         1, (DISK_FULL,), files=("mi200.json", "cache", "feats200.parquet"), tmpfs_kb=2048,
         setup=_fill_tmpfs(100, ("feats200.parquet", "f.parquet")), slow=True),
    # ---- 6: messages instead of "unexpected X ... please report it" --------------------------
    Case("json_nan_timestamp", 6, ("data", "info", "bad.json", "--format", "amazon"), 1, ("unixReviewTime", NONFINITE),
         files=("mi20.json",), setup=_json_lines_edit("mi20.json", "bad.json",
                                                     lambda o, i: o.update(unixReviewTime=float("nan")) if i == 3 else None)),
    Case("json_inf_timestamp", 6, ("data", "info", "bad.json", "--format", "amazon"), 1, ("unixReviewTime", NONFINITE),
         files=("mi20.json",), setup=_json_lines_edit("mi20.json", "bad.json",
                                                     lambda o, i: o.update(unixReviewTime=1e400) if i == 5 else None)),
    Case("json_huge_timestamp", 6, ("data", "info", "bad.json", "--format", "amazon"), 1, ("unixReviewTime",),
         files=("mi20.json",), setup=_json_lines_edit("mi20.json", "bad.json",
                                                     lambda o, i: o.update(unixReviewTime=1e30) if i == 5 else None)),
    Case("csv_inf_timestamp", 6, ("data", "info", "bad.csv"), 1, ("timestamp", NONFINITE), files=("ratings.csv",),
         setup=_csv_edit("ratings.csv", "bad.csv", lambda ls: ls[:5] + ["1,2,3,inf"] + ls[5:])),
    Case("csv_nan_timestamp_evaluate", 6, ("evaluate", "bad.csv", *EV, "--split", "temporal"), 1, ("timestamp", NONFINITE),
         files=("ratings.csv",), setup=_csv_edit("ratings.csv", "bad.csv", lambda ls: ls[:5] + ["1,2,3,nan"] + ls[5:])),
    Case("evaluate_negative_seed", 6, ("evaluate", "ratings.csv", *EV, "--seed", "-1"), 2, ("--seed",), files=("ratings.csv",)),
    Case("evaluate_huge_seed", 6, ("evaluate", "ratings.csv", *EV, "--seed", str(2**40)), (0, 2), (), files=("ratings.csv",),
         why="numpy takes any non-negative seed: works, or a clear --seed range error; never a crash"),
    Case("evaluate_negative_factors", 6, ("evaluate", "ratings.csv", "--models", "mf", "-O", "mf.factors=-5"), 2, ("factors",),
         files=("ratings.csv",)),
    Case("evaluate_absurd_factors", 6, ("evaluate", "ratings.csv", "--models", "mf", "-O", "mf.factors=10000000000"), (1, 2),
         ("factors",), files=("ratings.csv",)),
    Case("evaluate_nan_reg", 6, ("evaluate", "ratings.csv", "--models", "mf", "-O", "mf.reg=nan"), 2, ("reg",),
         files=("ratings.csv",)),
    Case("train_negative_factors", 6, ("train", "ratings.csv", "--model", "mf", "-O", "factors=-5", "--out", "m.joblib"), 2,
         ("factors",), files=("ratings.csv",)),
    Case("evaluate_out_is_folder", 6, ("evaluate", "ratings.csv", *EV, "--out", "outdir"), 2, ("outdir", FOLDER),
         files=("ratings.csv",), setup=_mkdir("outdir")),
    Case("evaluate_plot_is_folder", 6, ("evaluate", "ratings.csv", *EV, "--plot", "outdir"), 2, ("outdir", FOLDER),
         files=("ratings.csv",), setup=_mkdir("outdir")),
    Case("evaluate_save_split_is_folder", 6, ("evaluate", "ratings.csv", *EV, "--save-split", "outdir"), 2, ("outdir", FOLDER),
         files=("ratings.csv",), setup=_mkdir("outdir")),
    Case("train_out_is_folder", 6, ("train", "ratings.csv", "--model", "bias", "--out", "outdir"), 2, ("outdir", FOLDER),
         files=("ratings.csv",), setup=_mkdir("outdir")),
    Case("clean_out_is_folder", 6, ("clean", "texts.txt", "--out", "outdir"), 2, ("outdir",),
         files=("texts.txt",), setup=_mkdir("outdir")),
    Case("evaluate_test_fraction_too_big", 6, ("evaluate", "ratings.csv", *EV, "--test-fraction", "1.5"), 2, ("--test-fraction",),
         files=("ratings.csv",)),
    Case("evaluate_test_fraction_nan", 6, ("evaluate", "ratings.csv", *EV, "--test-fraction", "nan"), 2, ("--test-fraction",),
         files=("ratings.csv",)),
    Case("evaluate_k_zero", 6, ("evaluate", "ratings.csv", *EV, "--k", "0"), 2, ("--k",), files=("ratings.csv",)),
    Case("recommend_k_negative", 6, ("recommend", "model.joblib", "--users", "196", "--k", "-3"), 2, ("--k",), files=("model.joblib",)),
    Case("export_negative_max_length", 6, ("export", "--encoder", "minilm", "--max-length", "-1", "--out", "e"), 2, (("--max-length", "max_length"),),
         ),
    Case("export_negative_calibration_size", 6, ("export", "--encoder", "minilm", "--calibration-size", "-5", "--quantize", "static-int8",
                                                 "--out", "e"), 2, (("--calibration-size", "calibration_size"),)),
    Case("export_min_cosine_above_one", 6, ("export", "--encoder", "minilm", "--min-cosine", "2", "--out", "e"), 2,
         (("--min-cosine", "min_cosine"),)),
    Case("tokenize_negative_max_length", 6, ("tokenize", "texts.txt", "--max-length", "-4"), 2, (("--max-length", "max_length"),),
         files=("texts.txt",)),
    Case("data_sample_negative_seed", 6, ("data", "sample", "s", "--seed", "-1"), 2, ("--seed",)),
    Case("clean_permission_denied", 6, ("clean", "texts.txt", "--out", "ro/x.txt"), 1, ("ro", PERMISSION),
         files=("texts.txt",), setup=_readonly_dir("ro"), as_nobody=True),
    Case("evaluate_permission_denied", 6, ("evaluate", "ratings.csv", *EV, "--out", "ro/r.json"), 1, ("ro", PERMISSION),
         files=("ratings.csv",), setup=_readonly_dir("ro"), as_nobody=True),
    Case("train_permission_denied", 6, ("train", "ratings.csv", "--model", "bias", "--out", "ro/m.joblib"), 1, ("ro", PERMISSION),
         files=("ratings.csv",), setup=_readonly_dir("ro"), as_nobody=True),
    Case("input_unreadable", 6, ("data", "info", "secret.csv"), 1, ("secret.csv", PERMISSION),
         files=("ratings.csv",), setup=lambda d: (shutil.copy(d / "ratings.csv", d / "secret.csv"), os.chmod(d / "secret.csv", 0)),
         as_nobody=True),
    Case("clean_broken_pipe", 6, ("clean", "big.txt"), (0, 1, 141, -13), (), files=("big.txt",), mode="pipe_head"),
    Case("tokenize_broken_pipe", 6, ("tokenize", "big.txt"), (0, 1, 141, -13), (), files=("big.txt",), mode="pipe_head"),
    Case("export_manifest_missing_field", 6, ("extract", "mi20.json", "--format", "amazon", "--encoder", "exp", "--no-cache", "--out", "f.parquet"),
         (0, 1), (), files=("mi20.json", "exp"), setup=_tamper_export(_manifest_drop("default_file")),
         why="the loader may fall back to model.onnx or refuse, with one line; never a KeyError"),
    Case("export_manifest_missing_pooling", 6, ("extract", "mi20.json", "--format", "amazon", "--encoder", "exp", "--no-cache", "--out", "f.parquet"),
         1, ("manifest", "pooling"), files=("mi20.json", "exp"), setup=_tamper_export(_manifest_drop("pooling"))),
    Case("split_missing_field", 6, ("evaluate", "ratings.csv", *EV, "--load-split", "s.json"), 1, ("s.json", "kind"),
         files=("ratings.csv", "split.json"),
         setup=lambda d: (shutil.copy(d / "split.json", d / "s.json"), _edit_json(d / "s.json", lambda s: s.pop("kind")))),
    Case("split_rows_out_of_range", 6, ("evaluate", "ratings.csv", *EV, "--load-split", "s.json"), 1, ("s.json",),
         files=("ratings.csv", "split.json"),
         setup=lambda d: (shutil.copy(d / "split.json", d / "s.json"),
                          _edit_json(d / "s.json", lambda s: s.update(test_rows=[999999, -4])))),
    Case("split_not_json_object", 6, ("evaluate", "ratings.csv", *EV, "--load-split", "s.json"), 1, ("s.json",),
         files=("ratings.csv",), setup=_write("s.json", "[1, 2, 3]\n")),
    Case("features_manifest_missing_level", 6, ("evaluate", "mi200.json", "--format", "amazon", "--models", "content",
                                                "--features", "f.parquet"), (1, 2), ("f.parquet", "level"),
         files=("mi200.json",), setup=lambda d: (shutil.copy(d.parent / "_base" / "feats200.parquet", d / "f.parquet"),
                                                 _rewrite_features(d / "f.parquet", meta=lambda m: m.pop("level")))),
    Case("recommend_id_model_given_features", 6, ("recommend", "model.joblib", "--users", "196", "--features", "items200.parquet"), (1, 2),
         ("features",), files=("model.joblib", "items200.parquet", "items200.manifest.json"),
         why="an ID-only model given --features: a clear usage error"),
    # ---- 7: wrong inputs accepted with exit 0 ------------------------------------------------
    Case("features_from_other_dataset", 7, ("evaluate", "appl100.json", "--format", "amazon", "--models", "content",
                                            "--features", "feats200.parquet"), 1, ("feats200.parquet", ("match", "other dataset", "extracted from", "none of", "no vector")),
         files=("appl100.json", "feats200.parquet", "feats200.manifest.json"), silent=True),
    Case("item_features_from_other_dataset", 7, ("train", "appl100.json", "--format", "amazon", "--model", "content",
                                                 "--features", "items200.parquet", "--out", "m.joblib"), 1, ("items200.parquet",),
         files=("appl100.json", "items200.parquet", "items200.manifest.json"), silent=True),
    Case("features_dim_contradicts_metadata", 7, ("evaluate", "mi200.json", "--format", "amazon", "--models", "content",
                                                  "--features", "f.parquet"), 1, ("f.parquet", "dim"),
         files=("mi200.json",), silent=True,
         setup=lambda d: (shutil.copy(d.parent / "_base" / "feats200.parquet", d / "f.parquet"),
                          _rewrite_features(d / "f.parquet", meta=lambda m: m.update(dim=128)))),
    Case("features_all_nan", 7, ("evaluate", "mi200.json", "--format", "amazon", "--models", "content",
                                 "--features", "f.parquet"), 1, ("f.parquet", NONFINITE),
         files=("mi200.json",), silent=True,
         setup=lambda d: (shutil.copy(d.parent / "_base" / "feats200.parquet", d / "f.parquet"),
                          _rewrite_features(d / "f.parquet", vectors=lambda v: v * float("nan")))),
    Case("features_some_inf", 7, ("train", "mi200.json", "--format", "amazon", "--model", "content",
                                  "--features", "f.parquet", "--out", "m.joblib"), 1, ("f.parquet", NONFINITE),
         files=("mi200.json",), silent=True,
         setup=lambda d: (shutil.copy(d.parent / "_base" / "feats200.parquet", d / "f.parquet"),
                          _rewrite_features(d / "f.parquet", vectors=lambda v: _set(v, (3, 7), float("inf"))))),
    Case("features_metadata_stripped", 7, ("evaluate", "mi200.json", "--format", "amazon", "--models", "content",
                                           "--features", "f.parquet", "--split", "item-cold", "--k", "3"), (1, 2),
         ("f.parquet", ("metadata", "manifest", "level")),
         files=("mi200.json",), silent=True,
         setup=lambda d: (shutil.copy(d.parent / "_base" / "feats200.parquet", d / "f.parquet"),
                          _rewrite_features(d / "f.parquet", drop_meta=True)),
         why="without its metadata a review-level file must not pass as item-level (leakage)"),
    Case("features_level_relabelled_item", 7, ("evaluate", "mi200.json", "--format", "amazon", "--models", "content",
                                               "--features", "items200.parquet", "--split", "item-cold"), (1, 2), ("items200.parquet",),
         files=("mi200.json", "items200.parquet", "items200.manifest.json"),
         why="item vectors aggregated from all reviews contain the held-out ones (already refused)"),
    Case("features_zero_rows", 7, ("train", "mi200.json", "--format", "amazon", "--model", "content",
                                   "--features", "f.parquet", "--out", "m.joblib"), 1, ("f.parquet",), files=("mi200.json",), silent=True,
         setup=lambda d: (shutil.copy(d.parent / "_base" / "items200.parquet", d / "f.parquet"), _truncate_features(d / "f.parquet", 0))),
    Case("train_table_matches_nothing", 7, ("extract", "mi20.json", "--format", "amazon", "--level", "item", *ML,
                                            "--train", "other.csv", "--out", "f.parquet"), 1, ("other.csv", "--train"),
         files=("mi20.json", "cache"), setup=_write("other.csv", "user,item\nnobody,nothing\nghost,void\n"), silent=True),
    Case("train_table_without_columns", 7, ("extract", "mi20.json", "--format", "amazon", "--level", "item", *ML,
                                            "--train", "other.csv", "--out", "f.parquet"), (1, 2), ("other.csv",),
         files=("mi20.json", "cache"), setup=_write("other.csv", "a,b\n1,2\n")),
    Case("skip_bad_rows_undecodable", 7, ("data", "info", "bad.json", "--format", "amazon", "--skip-bad-rows"), 0, ("19",),
         files=("mi20.json",), setup=lambda d: (d / "bad.json").write_bytes(
             b"".join(ln if i != 4 else b'{"reviewerID": "\xff\xfe", "asin": "x"}\n'
                      for i, ln in enumerate((d / "mi20.json").read_bytes().splitlines(keepends=True)))),
         why="--skip-bad-rows must skip (and count) a line that is not UTF-8"),
    Case("skip_bad_rows_off_undecodable", 7, ("data", "info", "bad.json", "--format", "amazon"), 1, ("line 5", "--encoding"),
         files=("mi20.json",), setup=lambda d: (d / "bad.json").write_bytes(
             b"".join(ln if i != 4 else b'{"reviewerID": "\xff\xfe", "asin": "x"}\n'
                      for i, ln in enumerate((d / "mi20.json").read_bytes().splitlines(keepends=True))))),
    Case("text_field_missing_everywhere", 7, ("extract", "nt.json", "--format", "amazon", *ML, "--out", "f.parquet"), 1,
         (("reviewText", "text"),), files=("mi20.json", "cache"), silent=True,
         setup=_json_lines_edit("mi20.json", "nt.json", lambda o, i: (o.pop("reviewText"), o.pop("summary", None)))),
    Case("csv_without_text_extract", 7, ("extract", "ratings.csv", *ML, "--out", "f.parquet"), (1, 2), ("text",),
         files=("ratings.csv", "cache")),
    Case("load_split_other_data", 7, ("evaluate", "mi200.json", "--format", "amazon", *EV, "--load-split", "split.json"), 1,
         ("split.json",), files=("mi200.json", "split.json")),
    Case("recommend_features_other_encoder", 7, ("recommend", "m.joblib", "--users", "A2IBPI20UZIR0U", "--features", "f.parquet"), 1,
         ("features",), files=("mi200.json", "items200.parquet", "items200.manifest.json"), silent=True,
         pre=(("train", "mi200.json", "--format", "amazon", "--model", "content", "--features", "items200.parquet", "--out", "m.joblib"),),
         setup=lambda d: (shutil.copy(d / "items200.parquet", d / "f.parquet"),
                          _rewrite_features(d / "f.parquet", meta=lambda m: m.update(encoder="bert-base", weights_sha256="f" * 64)))),
    Case("duplicate_feature_ids", 7, ("train", "mi200.json", "--format", "amazon", "--model", "content", "--features", "f.parquet",
                                      "--out", "m.joblib"),
         1, ("f.parquet", "duplicate"), files=("mi200.json",), silent=True,
         setup=lambda d: (shutil.copy(d.parent / "_base" / "items200.parquet", d / "f.parquet"), _duplicate_first_row(d / "f.parquet"))),
    Case("extract_ok_item_level", 7, ("extract", "mi20.json", "--format", "amazon", "--level", "item", *ML, "--out", "f.parquet"), 0,
         ("f.parquet",), files=("mi20.json", "cache"), why="the plain path still works"),
    Case("evaluate_ok", 7, ("evaluate", "ratings.csv", *EV, "--out", "r.json", "--plot", "r.png"), 0, ("r.json", "r.png"),
         files=("ratings.csv",)),
    # ---- 8: terminal escapes ----------------------------------------------------------------
    Case("recommend_snippet_escape", 8, ("recommend", "m.joblib", "--users", "u1", "--k", "3"), 0, ("u1",),
         setup=_dataset_with_text([f"great {ESC}red\x07 strings\x1b]0;owned\x07", "bad \x1b[2J clear", "plain"]),
         pre=(("train", "esc.csv", "--model", "bias", "--out", "m.joblib"),)),
    Case("csv_header_escape", 8, ("data", "info", "bad.csv"), (1, 2), ("bad.csv",),
         setup=_write("bad.csv", f"us{ESC}er,it\x1b[2Jem,ra\x07ting\n1,2,3\n")),
    Case("jsonl_key_escape_clean", 8, ("clean", "bad.jsonl"), (1, 2), ("bad.jsonl",),
         setup=_write("bad.jsonl", json.dumps({f"te{ESC}xt_": "hello", "b\x1b[2J": 1}) + "\n")),
    Case("json_review_key_escape", 8, ("data", "info", "bad.json", "--format", "amazon"), (0, 1, 2), (),
         setup=_write("bad.json", json.dumps({f"reviewer{ESC}ID": "u", "asin\x1b[2J": "i", "overall": 5}) + "\n")),
    Case("path_with_escape", 8, ("data", "info", f"no{ESC}such\x1b[2J.csv"), (1, 2), ("such",)),
    Case("model_name_with_escape", 8, ("evaluate", "ratings.csv", "--models", f"bi{ESC}as"), 2, ("model",), files=("ratings.csv",)),
    Case("text_error_line_escape", 8, ("clean", "bad.jsonl"), 1, ("bad.jsonl", "line 2"),
         setup=_write("bad.jsonl", json.dumps({"text": "ok"}) + "\n" + f'{{"text": 5, "x{ESC}": 1}}\n' + f"{{not json {ESC}\n")),
    Case("review_text_escape_in_error", 8, ("data", "info", "bad.json", "--format", "amazon"), (1, 2), ("bad.json",),
         setup=_write("bad.json", f'{{"reviewerID": "u{ESC}", "asin": "i", "overall": "five{ESC}\x1b[2J"}}\n')),
    # ---- 9: config schema ---------------------------------------------------------------------
    Case("config_pipeline_unknown_key", 9, ("config", "validate", "c.toml"), 2, ("frobnicate",),
         setup=_write("c.toml", "[pipeline]\nfrobnicate = 1\n")),
    Case("config_pipeline_typo_evaluate", 9, ("evaluate", "ratings.csv", *EV, "--config", "c.toml"), 2, ("splitt", "split"),
         files=("ratings.csv",), setup=_write("c.toml", '[pipeline]\nsplitt = "item-cold"\n')),
    Case("config_pipeline_typo_extract", 9, ("extract", "mi20.json", "--format", "amazon", *ML, "--config", "c.toml", "--out", "f.parquet"),
         2, ("levle",), files=("mi20.json", "cache"), setup=_write("c.toml", '[pipeline]\nlevle = "item"\n')),
    Case("config_pipeline_k_string", 9, ("config", "validate", "c.toml"), 2, ("k",), setup=_write("c.toml", '[pipeline]\nk = "ten"\n')),
    Case("config_pipeline_seed_negative", 9, ("config", "validate", "c.toml"), 2, ("seed",), setup=_write("c.toml", "[pipeline]\nseed = -1\n")),
    Case("config_pipeline_fraction_out_of_range", 9, ("evaluate", "ratings.csv", *EV, "--config", "c.toml"), 2, ("test_fraction",),
         files=("ratings.csv",), setup=_write("c.toml", "[pipeline]\ntest_fraction = 3.0\n")),
    Case("config_pipeline_level_bad", 9, ("config", "validate", "c.toml"), 2, ("level",), setup=_write("c.toml", '[pipeline]\nlevel = "galaxy"\n')),
    Case("config_pipeline_split_bad", 9, ("config", "validate", "c.toml"), 2, ("split",), setup=_write("c.toml", '[pipeline]\nsplit = "sideways"\n')),
    Case("config_pipeline_not_table", 9, ("config", "validate", "c.toml"), 2, ("pipeline",), setup=_write("c.toml", 'pipeline = 3\n')),
    Case("config_unknown_section", 9, ("config", "validate", "c.toml"), 2, ("pipelines",), setup=_write("c.toml", "[pipelines]\nk = 3\n")),
    Case("config_valid_example", 9, ("config", "validate", str(REPO / "examples" / "pipeline.toml")), 0, ("OK",)),
]


def _set(v, idx, value):
    v[idx] = value
    return v


def _train_parquet(d: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    objs = [json.loads(line) for line in (d / "mi20.json").read_text().splitlines()]
    pq.write_table(pa.table({"user": [o["reviewerID"] for o in objs], "item": [o["asin"] for o in objs]}),
                   d / "train.parquet")  # fmt: skip
    (d / "train.jsonl").unlink()


def _truncate_features(path: Path, n: int) -> None:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    pq.write_table(table.slice(0, n), path)


def _duplicate_first_row(path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    first = table.slice(0, 1)
    second = table.slice(1, 1)
    # the second row's id becomes the first's: two different vectors for one item
    ids = table.column_names[0]
    second = second.set_column(0, ids, first.column(0))
    pq.write_table(pa.concat_tables([first, second, table.slice(2)]).replace_schema_metadata(table.schema.metadata), path)


_names = [c.name for c in CASES]
assert len(_names) == len(set(_names)), "case names must be unique"
BY_NAME = {c.name: c for c in CASES}
