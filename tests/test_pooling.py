"""Pooling: each method against a per-row computation on the real tokens only, for left and
right padding, and the guarantee that padding never changes a vector."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from recfeat.encode.pooling import POOLING_METHODS, normalize, pool  # noqa: E402
from recfeat.errors import OptionError  # noqa: E402

LENGTHS = [5, 1, 3, 7]  # real tokens per row; width 7, so rows 0-2 are padded


def _reference(rows: list[np.ndarray], method: str) -> np.ndarray:
    """The obvious per-row definition, with no padding anywhere."""
    fns = {
        "cls": lambda r: r[0],
        "mean": lambda r: r.mean(axis=0),
        "max": lambda r: r.max(axis=0),
        "last-token": lambda r: r[-1],
    }
    return np.stack([fns[method](r) for r in rows])


def _padded(rows: list[np.ndarray], side: str, fill: float):
    width = max(len(r) for r in rows)
    hidden = np.full((len(rows), width, rows[0].shape[1]), fill, dtype=np.float32)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        sl = slice(0, len(r)) if side == "right" else slice(width - len(r), width)
        hidden[i, sl] = r
        mask[i, sl] = 1
    return torch.from_numpy(hidden), torch.from_numpy(mask)


@pytest.fixture(scope="module")
def rows() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.normal(size=(n, 16)).astype(np.float32) for n in LENGTHS]


@pytest.mark.parametrize("method", POOLING_METHODS)
@pytest.mark.parametrize("side", ["right", "left"])
def test_pool_matches_per_row_reference(rows, method, side):
    # Padding holds large values so any leak into the result would show.
    hidden, mask = _padded(rows, side, fill=1e4)
    got = pool(hidden, mask, method).numpy()
    np.testing.assert_allclose(got, _reference(rows, method), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", POOLING_METHODS)
def test_padding_content_and_side_do_not_change_results(rows, method):
    results = [
        pool(*_padded(rows, side, fill), method).numpy()
        for side in ("left", "right")
        for fill in (0.0, -3.0, 1e4)
    ]
    for other in results[1:]:
        np.testing.assert_allclose(other, results[0], rtol=1e-6, atol=1e-6)


def test_last_token_reads_the_mask_not_the_padding_side(rows):
    hidden, mask = _padded(rows, "left", fill=0.0)
    got = pool(hidden, mask, "last-token").numpy()
    # With left padding the last real token is always the final column.
    np.testing.assert_allclose(got, hidden[:, -1].numpy())
    hidden, mask = _padded(rows, "right", fill=0.0)
    got = pool(hidden, mask, "last-token").numpy()
    np.testing.assert_allclose(got, np.stack([r[-1] for r in rows]))


def test_bf16_hidden_states_pool_in_float32(rows):
    hidden, mask = _padded(rows, "right", fill=0.0)
    got = pool(hidden.to(torch.bfloat16), mask, "mean")
    assert got.dtype == torch.float32


def test_unknown_pooling_lists_valid_methods(rows):
    hidden, mask = _padded(rows, "right", fill=0.0)
    with pytest.raises(OptionError, match="valid poolings: cls, mean, max, last-token"):
        pool(hidden, mask, "average")


def test_normalize_torch_and_numpy():
    x = np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(normalize(x), [[0.6, 0.8], [0.0, 0.0]])
    np.testing.assert_allclose(normalize(torch.from_numpy(x)).numpy(), [[0.6, 0.8], [0.0, 0.0]])


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("method", POOLING_METHODS)
def test_pool_exports_to_onnx_with_dynamic_axes(rows, method, tmp_path):
    """The exporter puts pool() in an ONNX graph: exported at one shape, it must hold at
    other batch sizes, lengths and padding sides."""
    ort = pytest.importorskip("onnxruntime")

    class Pool(torch.nn.Module):
        def forward(self, hidden, mask):
            return pool(hidden, mask, method)

    path = tmp_path / "pool.onnx"
    axes = {0: "batch", 1: "sequence"}
    torch.onnx.export(
        Pool(),
        _padded(rows[:2], "right", fill=0.0),
        str(path),
        input_names=["hidden", "mask"],
        output_names=["pooled"],
        dynamic_axes={"hidden": axes, "mask": axes, "pooled": {0: "batch"}},
        dynamo=False,
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for side in ("left", "right"):
        hidden, mask = _padded(rows, side, fill=5.0)
        got = session.run(None, {"hidden": hidden.numpy(), "mask": mask.numpy()})[0]
        np.testing.assert_allclose(got, _reference(rows, method), rtol=1e-5, atol=1e-5)
