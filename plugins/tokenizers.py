"""Built-in tokenizers: Hugging Face fast tokenizers behind recfeat's ``Tokenizer``.

``hf`` loads the tokenizer of a model folder or hub name (WordPiece for BERT-family models
such as MiniLM, byte-level BPE for GPT-2). ``train_byte_level_bpe`` trains a GPT-2-style
tokenizer on a corpus, for random-weight GPT-2 shapes that have no tokenizer of their own;
``gpt2-bpe`` wraps it as a component that trains once per corpus and then reloads.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from recfeat.components import TokenBatch, Tokenizer
from recfeat.data import validation as v
from recfeat.encode import engine
from recfeat.encode.bpe import GPT2_SPECIAL, train_byte_level_bpe  # noqa: F401  (re-exported)
from recfeat.encode.hf_models import cache_root
from recfeat.encode.hub import model_load_error, resolve_model
from recfeat.errors import DataError, OptionError, RecfeatError
from recfeat.plugin.hookspecs import hookimpl

# Files that make a folder loadable as a tokenizer even without a model config.json.
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def load_hf_tokenizer(model: str):
    """Load the fast tokenizer of ``model`` (hub name, alias or local folder), never downloading."""
    path = Path(os.path.expanduser(model))
    if path.is_dir() and any((path / f).exists() for f in _TOKENIZER_FILES):
        source = str(path)  # a bare tokenizer folder needs no model config.json
    else:
        source = resolve_model(model)
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(source, use_fast=True)
    except Exception as exc:  # OSError, ValueError, HF hub errors: one actionable line
        raise model_load_error(model, exc) from None
    if not getattr(tok, "is_fast", False):
        raise RecfeatError(
            f"model {model!r} has no fast (Rust) tokenizer; recfeat needs one: add a "
            "tokenizer.json to the model folder (save it with transformers' AutoTokenizer)"
        )
    return tok


class HFTokenizer(Tokenizer):
    """Hugging Face fast tokenizer of a model folder or hub name, with truncation statistics."""

    name = "hf"
    aliases = ("huggingface",)

    def __init__(
        self,
        model: str = "sentence-transformers/all-MiniLM-L6-v2",
        max_length: int = 256,
        add_special_tokens: bool = True,
    ):
        if max_length < 1:
            raise OptionError(f"tokenizer 'hf': max_length must be at least 1 (got {max_length})")
        self.model = model
        self.max_length = max_length
        self.add_special_tokens = add_special_tokens
        self._tok = None

    # -- loading -----------------------------------------------------------------------------
    def _load(self):
        return load_hf_tokenizer(self.model)

    @property
    def hf_tokenizer(self):
        """The underlying ``transformers.PreTrainedTokenizerFast`` (loaded on first use)."""
        if self._tok is None:
            tok = self._load()
            n_special = tok.num_special_tokens_to_add(pair=False) if self.add_special_tokens else 0
            if self.max_length <= n_special:
                raise OptionError(
                    f"tokenizer {self.name!r}: max_length={self.max_length} leaves no room for text "
                    f"after {n_special} special tokens; use at least {n_special + 1}"
                )
            limit = getattr(tok, "model_max_length", None)
            if limit and limit < 1_000_000 and self.max_length > limit:
                raise OptionError(
                    f"tokenizer {self.name!r}: max_length={self.max_length} exceeds what model "
                    f"{self.model!r} accepts ({limit}); use max_length <= {limit}"
                )
            self._tok = tok
        return self._tok

    @property
    def pad_id(self) -> int:  # type: ignore[override]
        tok = self.hf_tokenizer
        for candidate in (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id):
            if candidate is not None:
                return int(candidate)
        return 0

    @property
    def padding_side(self) -> str:  # type: ignore[override]
        return self.hf_tokenizer.padding_side

    @property
    def vocab_size(self) -> int:
        """Number of ids the tokenizer can produce, added tokens included."""
        return len(self.hf_tokenizer)

    @property
    def special_ids(self) -> frozenset[int]:
        return frozenset(int(i) for i in self.hf_tokenizer.all_special_ids)

    # -- tokenizing ----------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str]) -> TokenBatch:
        """Token ids of ``texts`` truncated to ``max_length``, with counts before truncation:
        the encode loop's tokenizing (``recfeat.encode.engine.tokenize``), so a huge text is
        cut before the tokenizer sees it, with the same kept ids."""
        texts = list(texts)
        if not texts:
            empty = np.zeros(0, dtype=np.int64)
            return TokenBatch([], empty, empty.copy())
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise DataError(
                    f"text {i} is a {type(text).__name__}, not a string; clean or convert the column first"
                )
        return engine.tokenize(self.hf_tokenizer, texts, self.max_length,
                               add_special_tokens=self.add_special_tokens)  # fmt: skip

    def decode(self, ids: Sequence[int]) -> str:
        return self.hf_tokenizer.decode(list(ids), skip_special_tokens=True)

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str]:
        return self.hf_tokenizer.convert_ids_to_tokens(list(ids))


# ---------------------------------------------------------------------------------------------
def _default_cache() -> Path:
    """``$RECFEAT_CACHE_DIR/bpe`` or ``~/.cache/recfeat/bpe`` (the vector cache's convention)."""
    return cache_root() / "bpe"


def read_corpus_lines(path: Path) -> list[str]:
    """Non-empty lines of a UTF-8 text file (one text per line)."""
    v.check_regular(path, "corpus")  # a FIFO would block the read below
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise v.read_error(path, exc, "corpus") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"corpus {path}: line {line} is not UTF-8 ({exc.reason}); convert it to UTF-8") from None
    return [line for line in text.split("\n") if line.strip()]


class GPT2BPETokenizer(HFTokenizer):
    """GPT-2-style byte-level BPE trained on a corpus file (one text per line); trained once, then reloaded."""

    name = "gpt2-bpe"
    aliases = ()

    def __init__(
        self,
        corpus: str,
        vocab_size: int = 8000,
        min_frequency: int = 2,
        max_length: int = 256,
        add_special_tokens: bool = False,
        cache_dir: str | None = None,
    ):
        super().__init__(model=corpus, max_length=max_length, add_special_tokens=add_special_tokens)
        self.corpus = corpus
        # ``vocab_size`` is also the Tokenizer property (size once trained), so the option is
        # stored under another attribute and get_options maps it back.
        self.vocab_size_option = vocab_size
        self.min_frequency = min_frequency
        self.cache_dir = cache_dir

    def get_options(self):
        return {
            "corpus": self.corpus,
            "vocab_size": self.vocab_size_option,
            "min_frequency": self.min_frequency,
            "max_length": self.max_length,
            "add_special_tokens": self.add_special_tokens,
            "cache_dir": self.cache_dir,
        }

    def trained_dir(self) -> Path:
        """Where the tokenizer for this corpus and these settings lives (content-addressed)."""
        path = Path(os.path.expanduser(self.corpus))
        v.check_regular(path, "corpus")  # a FIFO would block the read below
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        except OSError as exc:
            raise v.read_error(path, exc, "corpus") from None
        root = Path(self.cache_dir) if self.cache_dir else _default_cache()
        return root / f"{digest}-v{self.vocab_size_option}-f{self.min_frequency}"

    def _load(self):
        folder = self.trained_dir()
        if (folder / "tokenizer.json").exists():
            return load_hf_tokenizer(str(folder))
        texts = read_corpus_lines(Path(os.path.expanduser(self.corpus)))
        return train_byte_level_bpe(
            texts, vocab_size=self.vocab_size_option, out_dir=folder, min_frequency=self.min_frequency
        )


@hookimpl
def register_tokenizers(register):
    register(HFTokenizer, aliases=("huggingface",))
    register(GPT2BPETokenizer)
