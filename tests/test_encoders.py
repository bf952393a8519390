"""Transformer encoders: parity with sentence-transformers, order restoration, precision,
random standard shapes, laziness, statistics and bad options."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

pytest.importorskip("torch")

from recfeat.encode import hf_models
from recfeat.errors import DataError, OptionError, RecfeatError  # noqa: E402
from recfeat.extraction.cache import fingerprint_digest  # noqa: E402
from recfeat.plugin.registry import get_registry  # noqa: E402
from recfeat.plugins.encoders import HFEncoder, MiniLMEncoder  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _private_cache(tmp_path_factory):
    """Trained tokenizers and weight hashes go to a throwaway cache, not ~/.cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECFEAT_CACHE_DIR", str(tmp_path_factory.mktemp("recfeat-cache")))
        yield


def _create(name: str, **options):
    return get_registry("encoder").create(name, **options)


@pytest.fixture(scope="module")
def reviews(musical_instruments) -> list[str]:
    """~200 real reviews spread over the length range (some beyond 256 tokens)."""
    texts = []
    with gzip.open(musical_instruments, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            texts.append(f"{row.get('summary', '')}. {row.get('reviewText', '')}")
            if len(texts) == 2000:
                break
    by_length = sorted(texts, key=len)
    picked = by_length[::10]
    rng = np.random.default_rng(0)
    rng.shuffle(picked)  # input order unrelated to length
    return picked


@pytest.fixture(scope="module")
def minilm():
    return _create("minilm")


@pytest.fixture(scope="module")
def minilm_fp32(minilm, reviews) -> np.ndarray:
    return minilm.encode(reviews)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from recfeat.encode.similarity import cosine_rows

    return cosine_rows(a, b)


def test_minilm_matches_sentence_transformers(minilm, minilm_fp32, reviews, minilm_path):
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(str(minilm_path), device="cpu")
    expected = model.encode(reviews, convert_to_numpy=True)
    assert minilm_fp32.shape == expected.shape == (len(reviews), 384)
    assert minilm_fp32.dtype == np.float32
    assert _cosine(minilm_fp32, expected).min() > 0.9999
    # Normalised like sentence-transformers' Normalize module.
    np.testing.assert_allclose(np.linalg.norm(minilm_fp32, axis=1), 1.0, atol=1e-5)
    stats = minilm.last_stats
    assert stats["texts"] == len(reviews) and stats["truncated_texts"] >= 1
    assert stats["tokens_dropped"] > 0 and 0.0 <= stats["padding_ratio"] < 0.5


def test_order_restored_across_many_batches(minilm_fp32, reviews):
    # A small budget forces many batches, each holding texts from all over the input.
    enc = _create("minilm", batch_tokens=1024, max_batch_size=8)
    n = 60
    perm = np.random.default_rng(3).permutation(n)
    got = enc.encode([reviews[i] for i in perm])
    assert enc.last_stats["batches"] > 8
    np.testing.assert_allclose(got, minilm_fp32[:n][perm], atol=2e-5)


def test_bf16_close_to_fp32(minilm_fp32, reviews):
    got = _create("minilm", precision="bf16").encode(reviews[:100])
    assert got.dtype == np.float32
    assert _cosine(got, minilm_fp32[:100]).mean() >= 0.999


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_onednn_prepacking_keeps_fp32_numbers(minilm, minilm_fp32, reviews):
    from torch.utils.mkldnn import MkldnnLinear

    plain = _create("minilm", onednn=False)
    packed = _create("minilm", onednn=True)  # the default (None): machine.fp32_gemm_default
    np.testing.assert_allclose(plain.encode(reviews[:40]), minilm_fp32[:40], atol=1e-5)
    np.testing.assert_allclose(packed.encode(reviews[:40]), minilm_fp32[:40], atol=1e-5)
    assert any(isinstance(m, MkldnnLinear) for m in packed.load().model.modules())
    assert not any(isinstance(m, MkldnnLinear) for m in plain.load().model.modules())


def test_default_gemm_choice_is_fixed_by_the_machine_and_in_the_fingerprint(minilm, monkeypatch):
    """Never a timing: a choice timed per process flipped under load, and the two paths
    differ by ~1e-7, so two runs of one input wrote different bytes (a CI failure)."""
    from recfeat import machine

    assert minilm.fp32_gemm == machine.fp32_gemm_default()
    assert minilm.fingerprint()["gemm"] == minilm.fp32_gemm
    for vendor, machine_name, want in (("GenuineIntel", "x86_64", "blas"), ("AuthenticAMD", "x86_64", "onednn"),
                                       ("", "x86_64", "blas"), ("", "aarch64", "blas")):  # fmt: skip
        monkeypatch.setattr(machine, "cpu_vendor", lambda v=vendor: v)
        monkeypatch.setattr(machine.platform, "machine", lambda m=machine_name: m)
        assert machine.fp32_gemm_default() == want, (vendor, machine_name)
        assert _create("minilm").fingerprint()["gemm"] == want
    monkeypatch.undo()
    plain, packed = _create("minilm", onednn=False), _create("minilm", onednn=True)
    keys = {fingerprint_digest(e.fingerprint()) for e in (plain, packed)}
    assert len(keys) == 2  # the cache keeps the two paths' vectors apart
    # only fp32 on the CPU runs through either path
    assert "gemm" not in _create("minilm", precision="bf16").fingerprint()


def test_onednn_vectors_do_not_depend_on_the_batch(reviews):
    """On the oneDNN path a text's vector is the same bits alone, among 20 or among 200
    texts of other lengths (so a cache filled by another input serves the bits a fresh run
    computes). MKL's sgemm does not promise this: docs/reliability.md has the figures."""
    packed = _create("minilm", onednn=True)
    many = packed.encode(reviews[:200])[:20]
    few = packed.encode(reviews[:20])
    one = np.concatenate([packed.encode([t]) for t in reviews[:20]])
    np.testing.assert_array_equal(few, many)
    np.testing.assert_array_equal(one, few)


def test_two_default_encoders_write_the_same_bits(minilm, reviews):
    again = _create("minilm")
    np.testing.assert_array_equal(again.encode(reviews[:24]), minilm.encode(reviews[:24]))


def test_truncation_counted():
    enc = _create("minilm", max_length=32)
    long_text = " ".join(["guitar"] * 100)  # 100 word tokens + [CLS] + [SEP]
    enc.encode(["short one", long_text])
    stats = enc.last_stats
    assert stats["truncated_texts"] == 1
    assert stats["tokens_dropped"] == 102 - 32
    assert stats["tokens"] == 4 + 32
    batch = enc.tokenize(["short one", long_text])
    assert batch.n_tokens.tolist() == [4, 102] and batch.n_dropped.tolist() == [0, 70]


def test_empty_input_gives_empty_matrix_without_loading():
    enc = _create("minilm")
    out = enc.encode([])
    assert out.shape == (0, 384) and out.dtype == np.float32
    assert enc._loaded is None


def test_fingerprint_and_dim_without_loading_weights(minilm_path):
    enc = _create("minilm")
    fp = enc.fingerprint()
    assert enc.dim == 384 and enc._loaded is None
    assert fp["weights_sha256"] == hf_models.weights_sha256(minilm_path)
    assert {k: fp[k] for k in ("encoder", "pooling", "normalize", "max_length", "backend")} == {
        "encoder": "minilm",
        "pooling": "mean",
        "normalize": True,
        "max_length": 256,
        "backend": "torch",
    }
    assert fp["random_init"] is False and fp["precision"] == "fp32"
    # Anything that changes the vectors changes the fingerprint.
    assert _create("minilm", pooling="cls").fingerprint() != fp
    assert _create("minilm", precision="bf16").fingerprint() != fp


def test_generic_hf_encoder_on_local_folder(minilm_path, minilm_fp32, reviews):
    enc = _create("hf", model=str(minilm_path), normalize=True)
    assert enc.resolved_pooling == "mean"  # family default for BERT
    np.testing.assert_allclose(enc.encode(reviews[:20]), minilm_fp32[:20], atol=2e-5)


def test_cls_pooling_is_the_first_token_state(minilm_path):
    import torch
    import transformers

    texts = ["a fine strap", "the bridge pickup hums when the amp is loud"]
    # the folder's modules.json asks for normalisation; the raw CLS state is compared here
    got = _create("hf", model=str(minilm_path), pooling="cls", normalize=False).encode(texts)
    tok = transformers.AutoTokenizer.from_pretrained(minilm_path)
    net = transformers.AutoModel.from_pretrained(minilm_path).eval()
    with torch.inference_mode():
        for i, text in enumerate(texts):  # one at a time: no padding at all
            want = net(**tok([text], return_tensors="pt")).last_hidden_state[0, 0].numpy()
            np.testing.assert_allclose(got[i], want, atol=1e-4)


def test_alias_resolves_to_minilm():
    assert isinstance(_create("all-minilm-l6-v2"), MiniLMEncoder)
    assert {"hf", "minilm", "bert-base", "distilbert", "gpt2"} <= set(
        get_registry("encoder").names()
    )


def test_random_gpt2_last_token_ignores_padding(capfd):
    enc = _create("gpt2", init="random")
    texts = ["hi", "the strings buzz on the third fret", "ok then"]
    together = enc.encode(texts)
    alone = np.stack([enc.encode([t])[0] for t in texts])  # no padding at all
    assert together.shape == (3, 768)
    np.testing.assert_allclose(together, alone, atol=1e-4)
    assert "RANDOM weights" in capfd.readouterr().err
    fp = enc.fingerprint()
    assert fp["random_init"] is True and fp["source"] == "random:gpt2"
    assert fp["pooling"] == "last-token"


def test_random_shapes_are_seeded_and_labelled():
    a = _create("distilbert", init="random")
    b = _create("hf", model="distilbert-base", init="random")
    texts = ["good value", "a tuner that clips on well"]
    np.testing.assert_array_equal(a.encode(texts), b.encode(texts))
    assert a.fingerprint()["weights_sha256"] == b.fingerprint()["weights_sha256"]
    assert a.fingerprint()["random_init"] is True and a.dim == 768


def test_random_bert_base_builds_standard_shape():
    enc = _create("bert-base", init="random", onednn=False)  # plain Linear: countable params
    out = enc.encode(["tiny text"])
    net = enc.load().model
    assert out.shape == (1, 768) and np.isfinite(out).all()
    assert net.config.num_hidden_layers == 12 and net.config.hidden_size == 768
    assert 105e6 < sum(p.numel() for p in net.parameters()) < 115e6


def test_gpt2_tokenizer_trained_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("RECFEAT_CACHE_DIR", str(tmp_path))
    corpus = ["the guitar is loud and bright"] * 5 + ["strings and picks and straps"] * 5
    tok = hf_models.gpt2_tokenizer(corpus)
    cached = list((tmp_path / "tokenizers").glob("*/tokenizer.json"))
    assert len(cached) == 1 and tok.pad_token is not None
    again = hf_models.gpt2_tokenizer(corpus)
    assert again("guitar strings")["input_ids"] == tok("guitar strings")["input_ids"]


def test_weights_hash_cached_and_sensitive_to_content(tmp_path, monkeypatch):
    monkeypatch.setenv("RECFEAT_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "model"
    folder.mkdir()
    weights = folder / "model.safetensors"
    weights.write_bytes(b"\x00" * 1000)
    first = hf_models.weights_sha256(folder)
    assert len(list((tmp_path / "cache" / "hashes").iterdir())) == 1
    assert hf_models.weights_sha256(folder) == first
    weights.write_bytes(b"\x01" * 1000)
    assert hf_models.weights_sha256(folder) != first
    with pytest.raises(RecfeatError, match="no weight files"):
        hf_models.weights_sha256(tmp_path / "cache")


@pytest.mark.parametrize(
    "options,message",
    [
        ({"pooling": "average"}, "valid poolings: cls, mean, max, last-token"),
        ({"precision": "int4"}, "valid precisions: fp32, bf16, fp16"),
        ({"precision": "fp16"}, "needs device='cuda'"),
        ({"device": "tpu"}, "valid devices"),
        ({"max_length": 1}, "max_length must be at least 2"),
        ({"batch_tokens": 0}, "batch_tokens must be at least 1"),
        ({"threads": 0}, "threads must be at least 1"),
        ({"init": "zeros"}, "valid values: pretrained, random"),
        ({"init": "random", "model": "my/llm"}, "valid shapes: bert-base, distilbert-base"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(OptionError, match=message):
        _create("minilm", **options)


def test_cuda_without_gpu_is_a_clear_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(OptionError, match="no CUDA GPU"):
        _create("minilm", device="cuda")


def test_max_length_beyond_positions_fails_on_load():
    enc = _create("minilm", max_length=1000)
    with pytest.raises(OptionError, match="exceeds the 512 positions"):
        enc.encode(["x"])


def test_missing_model_is_one_clear_error():
    with pytest.raises(RecfeatError, match="cannot load model 'no-such-org/no-such-model'"):
        _create("hf", model="no-such-org/no-such-model").encode(["x"])


def test_broken_model_folder_is_one_clear_error(minilm_path, tmp_path):
    import shutil

    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        shutil.copy(minilm_path / name, tmp_path / name)
    (tmp_path / "model.safetensors").write_bytes(b"truncated download")
    with pytest.raises(RecfeatError, match="cannot load model folder"):
        _create("hf", model=str(tmp_path)).encode(["x"])


def test_non_text_input_rejected(minilm):
    with pytest.raises(DataError, match="text 1 is NoneType"):
        minilm.encode(["fine", None])
    with pytest.raises(DataError, match="not one string"):
        minilm.encode("just a string")


def test_encoder_is_an_hf_encoder_subclass_with_own_defaults():
    assert issubclass(MiniLMEncoder, HFEncoder)
    enc = _create("minilm")
    assert (enc.model, enc.pooling, enc.normalize) == (
        "sentence-transformers/all-MiniLM-L6-v2",
        "mean",
        True,
    )
    assert _create("gpt2").pooling == "last-token"
