"""The Ray Data engine (``recfeat extract --ray``) on a real two-node Ray cluster.

The cluster is the one CI starts (``.ci/run`` exports RECFEAT_TEST_RAY_ADDRESS: a head and a
second worker node, loopback only); without it (a developer machine) the fixture starts the
same two nodes itself with ``ray start --block`` and stops them by pid afterwards. The input
is a real file's rows (the first 600 Musical Instruments reviews, as .json.gz) and the
encoder a tiny random-weight BERT, so the whole file runs in about a minute on two cores.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray")

from _export_helpers import make_tiny  # noqa: E402
from _ray_cluster import free_port  # noqa: E402
from conftest import REPO, assert_one_line_error  # noqa: E402

SLICE_ROWS = 400


@pytest.fixture(scope="session")
def tiny_config(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ray-tiny")
    model = make_tiny("bert", root / "model")
    config = root / "tiny.toml"
    config.write_text(f'[encoder]\nuse = "hf"\nmodel = "{model}"\nmax_length = 64\n')
    return config


@pytest.fixture(scope="session")
def mi_slice(musical_instruments, tmp_path_factory) -> Path:
    """The first SLICE_ROWS lines of the real Musical Instruments file, gzipped as it is."""
    out = tmp_path_factory.mktemp("ray-data") / "mi_slice.json.gz"
    with gzip.open(musical_instruments, "rt", encoding="utf-8") as src, \
            gzip.open(out, "wt", encoding="utf-8") as dst:  # fmt: skip
        dst.writelines(itertools.islice(src, SLICE_ROWS))
    return out


@pytest.fixture(scope="session")
def local_results(mi_slice, tiny_config):
    """The local engine's answer, per level, computed once."""
    from recfeat.components.dataset import load_dataset
    from recfeat.config import component_spec, load_config
    from recfeat.extraction.pipeline import extract
    from recfeat.plugin.registry import get_registry

    name, options = component_spec(load_config(tiny_config)["encoder"])
    encoder = get_registry("encoder").create(name, **options)
    data = load_dataset(mi_slice, format="amazon")
    cache: dict = {}

    def get(level: str, aggregate: str | None = None):
        if (level, aggregate) not in cache:
            cache[level, aggregate] = extract(data, level, encoder, cache=False,
                                              aggregate=aggregate)  # fmt: skip
        return cache[level, aggregate]

    return get


def _cli(*args: str):
    from click.testing import CliRunner

    from recfeat.cli.main import cli

    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _subprocess_cli(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RECFEAT_LOAD_PLUGINS": ""}
    env.pop("RAY_ADDRESS", None)
    boot = "from recfeat.cli.main import cli; cli(prog_name='recfeat')"
    return subprocess.Popen([sys.executable, "-c", boot, *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            **kwargs)  # fmt: skip


def _assert_same(local, out: Path, keys: list[str]) -> dict:
    """Same ids and (within float tolerance) vectors after sorting by id; same counts."""
    from recfeat.extraction.ray_shards import read_output

    ids, vectors, manifest = read_output(str(out))
    a = local.ids.reset_index(drop=True).sort_values(keys).index.to_numpy()
    b = ids.sort_values(keys).index.to_numpy()
    assert len(ids) == len(local.ids)
    for col in local.ids.columns:
        np.testing.assert_array_equal(
            ids[col].to_numpy()[b].astype(str), local.ids[col].to_numpy()[a].astype(str)
        )
    np.testing.assert_allclose(vectors[b], local.vectors[a], atol=1e-5)
    for field in ("level", "source", "aggregate", "text_rows", "unique_texts", "empty_texts",
                  "truncated_texts", "tokens_dropped", "tokens_encoded", "truncation_unknown",
                  "rows_used", "empty_groups", "encoder", "cleaners"):  # fmt: skip
        assert manifest.get(field) == local.manifest.get(field), field
    return manifest


def test_review_level_on_two_nodes_matches_local_engine(ray_cluster, mi_slice, tiny_config,
                                                        local_results, tmp_path):  # fmt: skip
    out = tmp_path / "reviews"
    result = _cli("extract", str(mi_slice), "--config", str(tiny_config), "--ray",
                  "--ray-address", ray_cluster, "--actors", "1-2", "--cpus-per-actor", "0.5",
                  "--batch-rows", "128", "--out", f"{out}/")  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = _assert_same(local_results("review"), out, ["user", "item"])
    assert manifest["rows"] == SLICE_ROWS and manifest["engine"] == "ray"
    record = json.loads((out / "run.json").read_text())
    assert record["shards"] == manifest["shards"] == len(list(out.glob("part-*.parquet")))
    assert record["shards_written"] == record["shards"]


def test_user_level_aggregates_on_ray_as_locally(ray_cluster, mi_slice, tiny_config,
                                                 local_results, tmp_path):  # fmt: skip
    """Grouped sums and counts on Ray; rating-weighted, so the weights are checked too (item
    level is the same code with the item column)."""
    level, aggregate = "user", "rating-weighted"
    out = tmp_path / level
    args = ["extract", str(mi_slice), "--config", str(tiny_config), "--ray", "--ray-address",
            ray_cluster, "--cpus-per-actor", "0.5", "--batch-rows", "200", "--level", level,
            "--out", str(out)]  # fmt: skip
    result = _cli(*args, "--aggregate", aggregate)
    assert result.exit_code == 0, result.output
    _assert_same(local_results(level, aggregate), out, [level])


def _encoder_actor_pids(address: str) -> list[int]:
    """Processes of this cluster's encoder actors (Ray titles them after the class), found
    through their raylet parent, whose command line names this cluster's address."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            title = (proc / "cmdline").read_bytes()
            if b"ShardEncoder" not in title:
                continue
            stat = (proc / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            parent = Path(f"/proc/{ppid}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if address.encode() in parent or address.split(":")[1].encode() in parent:
            pids.append(int(proc.name))
    return pids


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_killed_actor_is_restarted_and_no_row_is_lost_or_doubled(ray_cluster, mi_slice,
                                                                 tiny_config, local_results,
                                                                 tmp_path):  # fmt: skip
    out = tmp_path / "killed-actor"
    proc = _subprocess_cli("extract", str(mi_slice), "--config", str(tiny_config), "--ray",
                           "--ray-address", ray_cluster, "--actors", "1",
                           "--cpus-per-actor", "0.5", "--batch-rows", "40", "--out", str(out))  # fmt: skip
    try:
        _wait(lambda: list(out.glob("part-*.parquet")), 240, "the first shard")
        victims = _wait(lambda: _encoder_actor_pids(ray_cluster), 30, "the encoder actor")
        os.kill(victims[0], signal.SIGKILL)
        output, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    record = json.loads((out / "run.json").read_text())
    assert victims[0] not in record["actor_pids"] or len(record["actor_pids"]) > 1
    manifest = _assert_same(local_results("review"), out, ["user", "item"])
    assert manifest["rows"] == SLICE_ROWS


def test_killed_driver_resumes_without_redoing_written_shards(ray_cluster, mi_slice,
                                                              tiny_config, local_results,
                                                              tmp_path):  # fmt: skip
    out = tmp_path / "killed-driver"
    # small shards (40 of 10 rows): the tiny model writes a shard in a few ms, so with 10
    # shards the whole run could finish between two polls of _wait and leave nothing to resume
    rows = 10
    args = ("extract", str(mi_slice), "--config", str(tiny_config), "--ray", "--ray-address",
            ray_cluster, "--cpus-per-actor", "0.5", "--batch-rows", str(rows), "--out", str(out))  # fmt: skip
    proc = _subprocess_cli(*args)
    try:
        _wait(lambda: len(list(out.glob("part-*.parquet"))) >= 2, 240, "two shards")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (out / "manifest.json").exists()
    written = {p.name: p.stat().st_ino for p in out.glob("part-*.parquet")}
    assert 2 <= len(written) < SLICE_ROWS // rows
    again = _cli(*args)
    assert again.exit_code == 0, again.output
    record = json.loads((out / "run.json").read_text())
    assert record["shards_skipped"] >= len(written)
    for name, inode in written.items():  # neither rewritten nor removed
        assert (out / name).stat().st_ino == inode
    manifest = _assert_same(local_results("review"), out, ["user", "item"])
    assert manifest["rows"] == SLICE_ROWS


def test_input_path_the_workers_cannot_see(ray_cluster, mi_slice, tiny_config, tmp_path):
    """A file the driver listed that is gone when the workers open it (what a path on the
    driver's own disk looks like to another node) is one line naming it."""
    import ray

    from recfeat.extraction.ray_data import explain_failure
    from recfeat.extraction.ray_runner import connect

    connect(ray_cluster)
    gone = tmp_path / "only-on-the-driver.json.gz"
    gone.write_bytes(mi_slice.read_bytes())
    ds = ray.data.read_json(str(gone))
    gone.unlink()
    with pytest.raises(Exception) as caught:
        ds.take_all()
    err = explain_failure(caught.value, data=str(gone), batch_rows=1024)
    assert "cannot read the input" in str(err) and str(gone) in str(err)
    assert "shared folder" in str(err) and "\n" not in str(err)


def test_out_of_memory_names_the_batch_size(ray_cluster):
    import ray

    from recfeat.errors import DataError
    from recfeat.extraction.ray_data import explain_failure
    from recfeat.extraction.ray_runner import connect

    connect(ray_cluster)

    @ray.remote(num_cpus=0)
    def allocate():
        raise MemoryError("cannot allocate")

    with pytest.raises(Exception) as caught:
        ray.get(allocate.remote())
    err = explain_failure(caught.value, data="x", batch_rows=512)
    assert isinstance(err, DataError) and "--batch-rows (now 512)" in str(err)
    oom = explain_failure(ray.exceptions.OutOfMemoryError("killed by the memory monitor"),
                          data="x", batch_rows=64)  # fmt: skip
    assert "out of memory" in str(oom) and "--batch-rows (now 64)" in str(oom)


def test_unreachable_address_is_one_line_within_the_timeout(mi_slice, tmp_path):
    port = free_port()  # nothing listens there
    started = time.monotonic()
    result = _cli("extract", str(mi_slice), "--ray", "--ray-address", f"127.0.0.1:{port}",
                  "--out", str(tmp_path / "o"))  # fmt: skip
    assert_one_line_error(result, 2, f"127.0.0.1:{port}", "--ray-address")
    assert time.monotonic() - started < 60


def test_ray_not_installed_names_the_install_command(mi_slice, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    result = _cli("extract", str(mi_slice), "--ray", "--out", str(tmp_path / "o"))
    assert_one_line_error(result, 1, "pip install 'recfeat[ray]'")


def test_flags_the_ray_engine_does_not_take(mi_slice, tmp_path):
    result = _cli("extract", str(mi_slice), "--ray", "--train", str(mi_slice),
                  "--out", str(tmp_path / "o"))  # fmt: skip
    assert_one_line_error(result, 2, "--train", "--ray")
    result = _cli("extract", str(mi_slice), "--ray", "--actors", "3-1",
                  "--out", str(tmp_path / "o"))  # fmt: skip
    assert_one_line_error(result, 2, "--actors 3-1")
    result = _cli("extract", str(tmp_path / "missing.json"), "--ray", "--out", str(tmp_path / "o"))
    assert_one_line_error(result, 1, "missing.json", "does not exist")


def test_folder_of_csv_shards_reads_ids_as_text_like_the_local_loader(ray_cluster, mi_slice,
                                                                      tiny_config, tmp_path):  # fmt: skip
    """CSV shards in a folder, ids with leading zeros: Ray's reader must keep them as text."""
    import pandas as pd

    from recfeat.components.dataset import load_dataset
    from recfeat.config import component_spec, load_config
    from recfeat.extraction.pipeline import extract
    from recfeat.plugin.registry import get_registry

    rows = [json.loads(line) for line in gzip.open(mi_slice, "rt", encoding="utf-8")][:120]
    table = pd.DataFrame({
        "user": [f"00{i % 40}" for i in range(len(rows))],
        "item": [r["asin"] for r in rows],
        "rating": [r["overall"] for r in rows],
        "text": [r["reviewText"] for r in rows],
    })  # fmt: skip
    # distinct (user, item) pairs, so the folder and the one file hold the same rows
    table = table.drop_duplicates(["user", "item"]).reset_index(drop=True)
    half = len(table) // 2
    folder = tmp_path / "shards"
    folder.mkdir()
    table.iloc[:half].to_csv(folder / "a.csv", index=False)
    table.iloc[half:].to_csv(folder / "b.csv", index=False)
    out = tmp_path / "csv-out"
    result = _cli("extract", str(folder), "--config", str(tiny_config), "--ray", "--ray-address",
                  ray_cluster, "--cpus-per-actor", "0.5", "--level", "user", "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    whole = tmp_path / "whole.csv"  # the same rows as one file, for the local engine
    table.to_csv(whole, index=False)
    name, options = component_spec(load_config(tiny_config)["encoder"])
    local = extract(load_dataset(whole, format="csv"), "user",
                    get_registry("encoder").create(name, **options), cache=False)  # fmt: skip
    assert set(local.ids["user"]) == {f"00{i}" for i in range(40)}
    manifest = _assert_same(local, out, ["user"])
    assert manifest["text_rows"] == len(table) and manifest["rows"] == 40


def test_a_users_file_that_looks_like_a_shard_is_neither_deleted_nor_read(ray_cluster, mi_slice,
                                                                         tiny_config, tmp_path):  # fmt: skip
    """Only files with recfeat's shard footer are removed as stale or read as output."""
    import pandas as pd

    from recfeat.extraction.ray_shards import read_output

    out = tmp_path / "mixed"
    out.mkdir()
    mine = out / "part-00000-6c2f.snappy.parquet"
    pd.DataFrame({"user": ["x"], "item": ["y"]}).to_parquet(mine)
    before = mine.read_bytes()
    result = _cli("extract", str(mi_slice), "--config", str(tiny_config), "--ray",
                  "--ray-address", ray_cluster, "--cpus-per-actor", "0.5", "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert mine.read_bytes() == before
    ids, _, manifest = read_output(str(out))
    assert len(ids) == SLICE_ROWS == manifest["rows"] and "x" not in set(ids["user"])


def test_a_users_level_named_file_is_refused_not_replaced(ray_cluster, mi_slice, tiny_config,
                                                         tmp_path):  # fmt: skip
    """Item/user-level output files carry recfeat's footer mark too: a run never deletes or
    replaces a ``part-level-*.parquet`` it cannot prove it wrote, and refuses before writing;
    its own level files from an earlier run are replaced as before."""
    import pandas as pd
    import pyarrow.fs as pafs

    from recfeat.extraction.ray_shards import read_output, written_by_recfeat

    out = tmp_path / "items"
    args = ["extract", str(mi_slice), "--config", str(tiny_config), "--ray", "--ray-address",
            ray_cluster, "--cpus-per-actor", "0.5", "--level", "item", "--out", str(out)]  # fmt: skip
    assert _cli(*args).exit_code == 0
    ours = sorted(out.glob("part-level-*.parquet"))
    local = pafs.LocalFileSystem()
    assert ours and all(written_by_recfeat(local, str(p)) for p in ours)
    first = read_output(str(out))
    assert _cli(*args).exit_code == 0  # a rerun replaces its own level files
    again = read_output(str(out))
    assert list(first[0]["item"]) == list(again[0]["item"])
    mine = out / "part-level-99999.parquet"
    pd.DataFrame({"item": ["mine"], "n_texts": [1]}).to_parquet(mine)
    before = mine.read_bytes()
    result = _cli(*args)
    assert_one_line_error(result, 1, "part-level-99999.parquet", "not written by recfeat")
    assert mine.read_bytes() == before
    assert sorted(out.glob("part-level-0*.parquet")) == ours  # the earlier output is intact


@pytest.mark.parametrize("flags", [("--actors", "400"), ("--cpus-per-actor", "64")])
def test_resources_the_cluster_can_never_give_fail_at_once(ray_cluster, mi_slice, tmp_path, flags):
    started = time.monotonic()
    result = _cli("extract", str(mi_slice), "--ray", "--ray-address", ray_cluster, *flags,
                  "--out", str(tmp_path / "o"))  # fmt: skip
    assert_one_line_error(result, 2, flags[0])
    assert time.monotonic() - started < 120
    assert not (tmp_path / "o").exists()  # nothing left behind by a run that never started


def test_a_recfeat_error_raised_in_a_ray_data_task_comes_back_as_one_line():
    """Ray Data hands the driver a RayTaskError(UserCodeException) whose only trace of the
    worker's DataError is text; the driver rebuilds the error from it, class and message."""
    from recfeat.atomic import UnsafeJournalError
    from recfeat.errors import DataError, UsageError
    from recfeat.extraction.ray_data import _from_text

    text = ("\x1b[36mray::MapBatches(read_planned_file)()\x1b[39m (pid=1, ip=192.0.2.2)\n"
            '  File "records.py", line 46, in source_files\n'
            "recfeat.errors.UsageError: input path 'mi20.json' does not exist; check the path\n"
            "Failed to apply UDF transform after 1/1 attempts.")  # fmt: skip
    err = _from_text(RuntimeError(text))
    assert type(err) is UsageError and str(err) == "input path 'mi20.json' does not exist; check the path"
    other = _from_text(RuntimeError("recfeat.atomic.UnsafeJournalError: journal j refused; remove it"))
    assert isinstance(other, DataError) and not isinstance(other, UnsafeJournalError)
    assert str(other) == "journal j refused; remove it"
    assert _from_text(RuntimeError("ValueError: not ours")) is None
