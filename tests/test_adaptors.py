"""recfeat adapt: cheap adaptors on frozen vectors (whiten, pca, linear, mlp), fitted on the
training part of a split only, saved as safe files with the features, read back with every
field checked, and refused by evaluate when the fit read the split's held-out ids.

Data: a seeded toy dataset (60 users, 80 items with texts, 12 interactions each) and
hand-written item vectors, so each fit takes well under a second.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import assert_one_line_error

import recfeat
from recfeat.data.features import read_features, write_features
from recfeat.data.recdata import RecData
from recfeat.errors import ArtifactError, DataError, UsageError
from recfeat.evaluation.splits import load_split, make_split
from recfeat.finetuning import TrainingLeakError, load_adaptor
from recfeat.finetuning.adaptors import adaptor_files, fit_trained

N_USERS, N_ITEMS, DIM = 60, 80, 16


@pytest.fixture(scope="module")
def toy() -> RecData:
    rng = np.random.default_rng(0)
    users = [f"u{i}" for i in range(N_USERS)]
    items = [f"i{j}" for j in range(N_ITEMS)]
    rows = [(u, items[j], t, float(rng.integers(1, 6)))
            for u in users for t, j in enumerate(rng.choice(N_ITEMS, 12, replace=False))]  # fmt: skip
    inter = pd.DataFrame(rows, columns=["user", "item", "timestamp", "rating"])
    texts = pd.DataFrame({"item": items, "text": [f"item text {j}" for j in range(N_ITEMS)]})
    return RecData("toy", inter, items=texts)


@pytest.fixture(scope="module")
def features(tmp_path_factory) -> Path:
    """Correlated, off-centre item vectors (whitening has something to undo)."""
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(N_ITEMS, DIM)) @ rng.normal(size=(DIM, DIM)) + 3.0
    path = tmp_path_factory.mktemp("feats") / "items.parquet"
    write_features(path, pd.DataFrame({"item": [f"i{j}" for j in range(N_ITEMS)]}),
                   vectors.astype(np.float32), {"level": "item", "source": "item texts"})  # fmt: skip
    return path


def _fit_rows(out: Path, items) -> np.ndarray:
    ids, _, _ = read_features(out)
    return np.flatnonzero(ids["item"].isin(set(items)).to_numpy())


# -- whiten / pca ---------------------------------------------------------------------------------
def test_whitening_gives_identity_covariance_on_the_training_items_only(toy, features, tmp_path):
    out = tmp_path / "white.parquet"
    result = recfeat.adapt(features, toy, "whiten", out=out, split="item-cold", seed=0)
    split = result.split
    assert split.cold_items
    ids, adapted, manifest = read_features(out)
    fit = _fit_rows(out, split.train["item"])
    assert len(fit) == N_ITEMS - len(split.cold_items)
    assert np.allclose(adapted[fit].mean(axis=0), 0, atol=1e-4)
    assert np.allclose(np.cov(adapted[fit].T.astype(np.float64)), np.eye(DIM), atol=1e-3)
    # the cold items were transformed, never fitted on: their covariance is not the identity
    cold = _fit_rows(out, split.cold_items)
    assert not np.allclose(np.cov(adapted[cold].T.astype(np.float64)), np.eye(DIM), atol=1e-2)
    # the lineage names the fitted ids, none of them cold; the manifest records kind and split
    info = json.loads(adaptor_files(out)["info"].read_text())
    assert set(info["lineage"]["items"]) == set(split.train["item"])
    assert not set(info["lineage"]["items"]) & set(split.cold_items)
    block = manifest["adaptor"]
    assert block["kind"] == "whiten" and block["split"]["kind"] == "item-cold"
    assert block["fitted_on"] == len(fit) and len(block["params_sha256"]) == 64
    assert manifest["level"] == "item" and manifest["source"] == "item texts"  # provenance kept
    # the split file beside it is evaluate's: --load-split rebuilds the same split
    again = load_split(adaptor_files(out)["split"], toy.interactions)
    assert np.array_equal(again.test_rows, split.test_rows)


def test_pca_cuts_the_dimension_and_refuses_more_than_the_rows_span(toy, features, tmp_path):
    result = recfeat.adapt(features, toy, "pca", out=tmp_path / "pca.parquet", dim=5)
    _, adapted, manifest = read_features(tmp_path / "pca.parquet")
    assert adapted.shape == (N_ITEMS, 5) and manifest["dim"] == 5
    assert result.adaptor.in_dim == DIM and result.adaptor.out_dim == 5
    # pca keeps the scale: the variances are decreasing, not all one
    fit = _fit_rows(tmp_path / "pca.parquet", result.split.train["item"])
    variances = adapted[fit].var(axis=0, ddof=1)
    assert np.all(np.diff(variances) <= 1e-4) and variances[0] > 2 * variances[-1]
    with pytest.raises(UsageError, match="--dim 17 is wider than the 16-dimensional input"):
        recfeat.adapt(features, toy, "pca", out=tmp_path / "wide.parquet", dim=17)
    from recfeat.finetuning.adaptors import fit_pca

    few = np.random.default_rng(0).normal(size=(4, DIM))
    with pytest.raises(DataError, match="--dim 8 exceeds the 3 directions the 4 training vectors span"):
        fit_pca(few, whiten=True, dim=8)


# -- linear / mlp ---------------------------------------------------------------------------------
def _pairs(n=200, seed=0):
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(50, DIM)).astype(np.float32)
    anchors = rng.integers(0, 50, n)
    # a hidden structure the frozen cosine does not show: item k's partner is (k + 1) mod 50
    return vectors, anchors, (anchors + 1) % 50


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_trained_adaptor_is_seeded_and_lowers_its_pair_loss(kind):
    vectors, a, p = _pairs()
    opts = dict(dim=None, hidden=None, steps=60, batch_size=32, learning_rate=0.01, scale=20.0)
    one = fit_trained(kind, vectors, a, p, seed=0, **opts)
    two = fit_trained(kind, vectors, a, p, seed=0, **opts)
    other = fit_trained(kind, vectors, a, p, seed=1, **opts)
    for name in one.adaptor.arrays:
        assert np.array_equal(one.adaptor.arrays[name], two.adaptor.arrays[name])
    assert any(not np.array_equal(one.adaptor.arrays[k], other.adaptor.arrays[k]) for k in one.adaptor.arrays)
    assert one.final < one.initial - 0.5, (one.initial, one.final)
    out = one.adaptor.transform(vectors)
    assert np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)  # cosine space: unit rows


def test_linear_adaptor_on_dataset_pairs_lowers_the_loss_and_is_reproducible(toy, features, tmp_path):
    a = recfeat.adapt(features, toy, "linear", out=tmp_path / "a.parquet", steps=40, learning_rate=0.01)
    b = recfeat.adapt(features, toy, "linear", out=tmp_path / "b.parquet", steps=40, learning_rate=0.01)
    loss = a.info["fit"]["loss"]
    assert loss["final"] < loss["initial"] and loss["initial"] == loss["frozen"]  # identity start
    assert a.manifest["adaptor"]["params_sha256"] == b.manifest["adaptor"]["params_sha256"]
    assert a.info["settings"]["pairs"] == {"next-item": a.info["fit"]["pairs"]}
    # the pairs came from training rows only
    test_rows = set(zip(a.split.test["user"], a.split.test["item"], strict=True))
    assert not {tuple(r) for r in a.info["lineage"]["rows"]} & test_rows


# -- the saved files ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved(toy, features, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("saved") / "mlp.parquet"
    recfeat.adapt(features, toy, "mlp", out=out, hidden=12, dim=8, steps=20)
    return out


def test_saved_adaptor_round_trips(saved, features):
    _, source, _ = read_features(features)
    _, adapted, _ = read_features(saved)
    for path in (saved, adaptor_files(saved)["info"], adaptor_files(saved)["params"]):
        adaptor = load_adaptor(path)
        assert adaptor.kind == "mlp" and (adaptor.in_dim, adaptor.out_dim) == (DIM, 8)
        assert np.array_equal(adaptor.transform(source), adapted)
    one = load_adaptor(saved).transform(source[3])  # serve: one query vector at a time
    assert one.shape == (8,) and np.allclose(one, adapted[3], atol=1e-6)
    with pytest.raises(DataError, match="takes vectors of dimension 16"):
        load_adaptor(saved).transform(source[:, :4])


def _copy(saved: Path, where: Path) -> Path:
    import shutil

    where.mkdir()
    for path in saved.parent.glob(saved.name.split(".")[0] + ".*"):
        shutil.copy(path, where / path.name)
    return where / saved.name


def _rewrite_params(copy: Path, arrays: dict, *, fix_sha: bool) -> None:
    from safetensors.numpy import save

    files = adaptor_files(copy)
    data = save(arrays)
    files["params"].write_bytes(data)
    if fix_sha:  # a forger who also edits the info file (its own sha is in the manifest)
        import hashlib

        info = json.loads(files["info"].read_text())
        info["params_sha256"] = hashlib.sha256(data).hexdigest()
        files["info"].write_text(json.dumps(info))


def test_tampered_adaptor_files_are_refused(saved, tmp_path):
    good = load_adaptor(saved).arrays
    # wrong shape (sha256 made to agree, read through the info file)
    copy = _copy(saved, tmp_path / "shape")
    _rewrite_params(copy, {**good, "weight2": np.zeros((12, 9), np.float32)}, fix_sha=True)
    with pytest.raises(ArtifactError, match="array bias2 has shape|array weight2 has shape"):
        load_adaptor(adaptor_files(copy)["info"])
    # NaN
    copy = _copy(saved, tmp_path / "nan")
    bad = dict(good)
    bad["bias1"] = good["bias1"].copy()
    bad["bias1"][0] = np.nan
    _rewrite_params(copy, bad, fix_sha=True)
    with pytest.raises(ArtifactError, match="bias1 holds NaN"):
        load_adaptor(adaptor_files(copy)["info"])
    # float64 arrays
    copy = _copy(saved, tmp_path / "dtype")
    _rewrite_params(copy, {k: v.astype(np.float64) for k, v in good.items()}, fix_sha=True)
    with pytest.raises(ArtifactError, match="must be float32"):
        load_adaptor(adaptor_files(copy)["info"])
    # params edited, sha256 not: refused
    copy = _copy(saved, tmp_path / "sha")
    _rewrite_params(copy, {**good, "bias2": good["bias2"] + 1}, fix_sha=False)
    with pytest.raises(ArtifactError, match="does not match its recorded sha256"):
        load_adaptor(copy)
    # the info file's sha256 edited: the manifest's sha256 of it no longer agrees
    copy = _copy(saved, tmp_path / "info")
    _rewrite_params(copy, {**good, "bias2": good["bias2"] + 1}, fix_sha=True)
    with pytest.raises(ArtifactError, match="does not match the sha256 in"):
        load_adaptor(copy)
    # a lineage that hides an id the fit read
    copy = _copy(saved, tmp_path / "lineage")
    info_path = adaptor_files(copy)["info"]
    info = json.loads(info_path.read_text())
    info["lineage"]["rows"] = info["lineage"]["rows"][1:]
    info_path.write_text(json.dumps(info))
    with pytest.raises(ArtifactError, match="does not match its digest"):
        load_adaptor(info_path)
    # the sidecar gone
    copy = _copy(saved, tmp_path / "gone")
    adaptor_files(copy)["params"].unlink()
    with pytest.raises(ArtifactError, match="is missing; keep it beside"):
        load_adaptor(copy)


# -- evaluate's leak refusal ----------------------------------------------------------------------
def test_evaluate_refuses_an_adaptor_fitted_on_the_splits_cold_items(toy, features, tmp_path):
    everything = tmp_path / "all.parquet"
    recfeat.adapt(features, toy, "whiten", out=everything, fit_on="all")
    with pytest.raises(TrainingLeakError) as err:
        recfeat.evaluate(toy, str(everything), models=["bias"], split="item-cold")
    message = str(err.value)
    assert "was fitted on vectors of this item-cold split's" in message
    assert "cold item(s) (first: 'i" in message and "--fit-on all" in message and "\n" not in message
    # fitted on one item-cold split, evaluated on another: refused, naming the split to use
    fitted = tmp_path / "fitted.parquet"
    recfeat.adapt(features, toy, "whiten", out=fitted, split="item-cold", seed=0)
    other = make_split(toy.interactions, "item-cold", seed=1)
    with pytest.raises(TrainingLeakError, match=r"--load-split .*fitted\.adaptor-split\.json"):
        recfeat.evaluate(toy, str(fitted), models=["bias"], split=other)
    # its own split passes, and says so
    result = recfeat.evaluate(toy, str(fitted), models=["bias"],
                              load_split=str(adaptor_files(fitted)["split"]))  # fmt: skip
    check = result.info["leaks"]["item_features_training"]
    assert check["status"] == "ok" and "adaptor whiten" in check["message"]
    # adapted vectors handed over in memory cannot be checked: refused, not waved through
    from recfeat.data.features import Features

    ids, vectors, manifest = read_features(fitted)
    with pytest.raises(DataError, match="given in memory"):
        recfeat.evaluate(toy, Features(ids["item"], vectors, manifest), models=["bias"], split=other)


def test_cli_adapt_and_evaluate_refusal(toy, features, tmp_path):
    from recfeat.cli.main import cli

    data = tmp_path / "toy.csv"
    toy.interactions.to_csv(data, index=False)
    # a csv has no item texts: whiten needs none; the fit reads training items only
    out = tmp_path / "w.parquet"
    result = CliRunner().invoke(cli, ["adapt", str(features), "--data", str(data), "--kind", "whiten",
                                      "--split", "item-cold", "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "fitted a whiten adaptor (16 -> 16)" in result.output and "--load-split" in result.output
    result = CliRunner().invoke(cli, ["evaluate", str(data), "--features", str(out), "--models", "bias",
                                      "--split", "item-cold", "--seed", "1"])  # fmt: skip
    assert_one_line_error(result, 1, "was fitted on vectors of this item-cold split", "--load-split")


@pytest.mark.parametrize("args, code, fragments", [
    (["--kind", "whiten"], 2, ["Missing option '--data'"]),
    (["--data", "D", "--kind", "whitening"], 2, ["'whitening' is not one of"]),
    (["--data", "D", "--kind", "whiten", "--steps", "5"], 2, ["--steps applies to --kind linear or mlp"]),
    (["--data", "D", "--kind", "linear", "--hidden", "5"], 2, ["--hidden applies to --kind mlp"]),
    (["--data", "D", "--kind", "whiten", "--fit-on", "all", "--split", "item-cold"], 2, ["--fit-on all reads every vector"]),
    (["--data", "D", "--kind", "pca", "--dim", "0"], 2, ["--dim"]),
    (["--data", "D", "--kind", "mlp", "--max-pairs", "lots"], 2, ["--max-pairs must be a whole number or 'all'"]),
])  # fmt: skip
def test_cli_bad_arguments_are_one_line(features, tmp_path, args, code, fragments):
    from recfeat.cli.main import cli

    result = CliRunner().invoke(cli, ["adapt", str(features), *args, "--out", str(tmp_path / "o.parquet")])
    assert_one_line_error(result, code, *fragments)
    assert not (tmp_path / "o.parquet").exists()


def test_cli_refuses_missing_input_existing_output_and_bad_level(toy, features, tmp_path):
    from recfeat.cli.main import cli

    data = tmp_path / "toy.csv"
    toy.interactions.to_csv(data, index=False)
    base = ["--data", str(data), "--kind", "whiten"]
    result = CliRunner().invoke(cli, ["adapt", str(tmp_path / "nope.parquet"), *base, "--out", str(tmp_path / "o.parquet")])
    assert_one_line_error(result, 1, "does not exist")
    out = tmp_path / "o.parquet"
    out.write_bytes(b"keep me")
    result = CliRunner().invoke(cli, ["adapt", str(features), *base, "--out", str(out)])
    assert_one_line_error(result, 2, "already exists", "--force")
    assert out.read_bytes() == b"keep me"
    result = CliRunner().invoke(cli, ["adapt", str(features), *base, "--out", str(features), "--force"])
    assert_one_line_error(result, 2, "same file as FEATURES")
    # adapting adapted features is refused: one adaptor per file keeps the lineage whole
    once = tmp_path / "once.parquet"
    recfeat.adapt(features, toy, "pca", out=once)
    result = CliRunner().invoke(cli, ["adapt", str(once), *base, "--out", str(tmp_path / "twice.parquet")])
    assert_one_line_error(result, 2, "already adapted")


def test_the_params_file_bytes_depend_only_on_the_arrays(saved):
    from recfeat.finetuning.adaptors import params_bytes

    adaptor = load_adaptor(saved)
    assert len({params_bytes(adaptor) for _ in range(20)}) == 1
    assert params_bytes(adaptor) == adaptor_files(saved)["params"].read_bytes()


# -- serve applies the adaptor ----------------------------------------------------------------------
class _HashEncoder:
    """A DIM-wide stand-in for the encoder the source vectors came from."""

    name = "hash16"
    backend = "fake"
    dim = DIM

    def fingerprint(self):
        return {"encoder": self.name, "backend": self.backend, "max_length": 64}

    def encode(self, texts):
        return np.stack([np.random.default_rng(len(t)).normal(size=DIM) for t in texts]).astype(np.float32)

    def tokenize(self, texts):
        from types import SimpleNamespace

        return SimpleNamespace(lengths=np.ones(len(texts), np.int64), n_dropped=np.zeros(len(texts), np.int64))


def test_serve_maps_every_encoded_text_through_the_adaptor_of_adapted_features(saved, features):
    """Adapted --item-features live in the adaptor's space: the server finds the adaptor
    (adaptor_of_features) and every text it encodes, for /embed, queries and added items,
    goes through the same map; plain features have none."""
    from recfeat.finetuning.adaptors import adaptor_of_features
    from recfeat.serve.server import build_state
    from recfeat.serve.state import ServeSettings

    assert adaptor_of_features(features) is None
    adaptor = adaptor_of_features(saved)
    assert adaptor is not None and adaptor.out_dim == 8
    state, _ = build_state(ServeSettings(), encoder="hash16", engine=_HashEncoder(),
                           item_features=str(saved), cleaners="none", adaptor=adaptor)  # fmt: skip
    assert state.store.dim == 8 and len(state.store) == N_ITEMS
    texts = ["a query", "another, longer query"]
    served = state.embedder.encode_now(texts).vectors
    assert served.shape == (2, 8)
    assert np.allclose(served, adaptor.transform(_HashEncoder().encode(texts)), atol=1e-6)
    assert state.embedder.fingerprint["adaptor"] == adaptor.identity()
    # without the adaptor the 16-wide encoder cannot serve 8-wide item vectors
    with pytest.raises(UsageError, match="dimension 8 but the served encoder gives 16"):
        build_state(ServeSettings(), encoder="hash16", engine=_HashEncoder(),
                    item_features=str(saved), cleaners="none")  # fmt: skip
