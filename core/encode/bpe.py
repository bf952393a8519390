"""GPT-2-style byte-level BPE trained on a corpus: the tokenizer random-weight GPT-2 shapes
use (no download), and the ``bpe`` tokenizer plugin's trainer."""

from __future__ import annotations

import os
from collections.abc import Iterable

from recfeat.atomic import atomic_dir
from recfeat.errors import DataError, OptionError

GPT2_SPECIAL = "<|endoftext|>"


def train_byte_level_bpe(
    texts: Iterable[str],
    vocab_size: int = 8000,
    out_dir: str | os.PathLike | None = None,
    min_frequency: int = 2,
):
    """Train a GPT-2-style byte-level BPE tokenizer on ``texts``; return a ``PreTrainedTokenizerFast``.

    Same design as GPT-2's: byte-level pre-tokenizer without a prefix space, every byte in
    the initial alphabet (so nothing is ever unknown), one special token ``<|endoftext|>``
    serving as bos, eos, pad and unk, no special tokens added by default, and
    ``model_max_length`` 1024. Training is deterministic for a given corpus and settings.
    With ``out_dir`` the tokenizer is saved there with ``save_pretrained``, atomically
    (built in a temporary folder, then renamed over ``out_dir``).
    """
    from tokenizers import Tokenizer as RustTokenizer
    from tokenizers import decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 257:
        raise OptionError(
            f"vocab_size={vocab_size} is too small for a byte-level BPE: it needs 256 byte "
            "tokens plus <|endoftext|>; use at least 257"
        )
    corpus = [t for t in texts if isinstance(t, str) and t]
    if not corpus:
        raise DataError("cannot train a BPE tokenizer on an empty corpus; give it some non-empty texts")

    rust = RustTokenizer(models.BPE())
    rust.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    rust.decoder = decoders.ByteLevel()
    rust.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[GPT2_SPECIAL],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    rust.train_from_iterator(corpus, trainer=trainer, length=len(corpus))
    tok = PreTrainedTokenizerFast(
        tokenizer_object=rust,
        bos_token=GPT2_SPECIAL,
        eos_token=GPT2_SPECIAL,
        unk_token=GPT2_SPECIAL,
        pad_token=GPT2_SPECIAL,
        model_max_length=1024,
    )
    if out_dir is not None:
        with atomic_dir(out_dir, force=True) as tmp:
            tok.save_pretrained(str(tmp))
    return tok
