"""Load a Hugging Face transformer (base model, no LM head) and its fast tokenizer.

One loader serves the torch encoders and the ONNX exporter, so both see the same weights,
tokenizer, family and weights hash. ``init="random"`` builds a standard shape (bert-base,
distilbert-base, gpt2, minilm-l6) from its config with seeded random weights, for throughput
work where the real weights are not at hand; such models say so (``random_init``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from recfeat.atomic import atomic_dir, write_text
from recfeat.encode import hub
from recfeat.encode.bpe import train_byte_level_bpe
from recfeat.errors import OptionError, RecfeatError

INITS = ("pretrained", "random")
RANDOM_SEED = 0

# Standard shapes for init="random"; names people already use map onto them.
RANDOM_SHAPES = ("bert-base", "distilbert-base", "gpt2", "minilm-l6")
_SHAPE_ALIASES = {
    "bert-base": "bert-base",
    "bert-base-uncased": "bert-base",
    "google-bert/bert-base-uncased": "bert-base",
    "distilbert-base": "distilbert-base",
    "distilbert": "distilbert-base",
    "distilbert-base-uncased": "distilbert-base",
    "distilbert/distilbert-base-uncased": "distilbert-base",
    "gpt2": "gpt2",
    "openai-community/gpt2": "gpt2",
    "minilm-l6": "minilm-l6",
    "minilm": "minilm-l6",
    "all-minilm-l6-v2": "minilm-l6",
    "all-MiniLM-L6-v2": "minilm-l6",
    "sentence-transformers/all-MiniLM-L6-v2": "minilm-l6",
}

# Families whose natural summary is the mean of token states (bidirectional encoders).
_ENCODER_TYPES = {
    "bert", "distilbert", "roberta", "xlm-roberta", "mpnet", "electra", "albert", "camembert",
    "deberta", "deberta-v2", "ernie", "nomic_bert", "modernbert", "xlm", "flaubert", "funnel",
}
# Decoder-only families: only the last token has read the whole text.
_DECODER_TYPES = {
    "gpt2", "gpt_neo", "gptj", "gpt_neox", "llama", "mistral", "mixtral", "qwen2", "qwen3",
    "phi", "phi3", "gemma", "gemma2", "gemma3_text", "opt", "bloom", "falcon", "olmo", "smollm3",
}
_WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "model*.bin")


@dataclasses.dataclass
class LoadedModel:
    """A base transformer in eval mode with what encoders and exporters need to know about it."""

    model: Any  # torch.nn.Module (AutoModel: no LM head)
    tokenizer: Any  # transformers.PreTrainedTokenizerFast, pad token set
    family: str  # "bert", "distilbert", "gpt2" or the config's model_type
    source: str  # local folder, hub id, or "random:<shape>"
    weights_sha256: str
    random_init: bool
    default_pooling: str  # "mean" for encoders, "last-token" for decoders
    input_names: tuple[str, ...] = ("input_ids", "attention_mask")
    max_positions: int | None = None

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)


def cache_root() -> Path:
    """recfeat's cache folder: ``$RECFEAT_CACHE_DIR`` or ``~/.cache/recfeat``."""
    env = os.environ.get("RECFEAT_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "recfeat"


def check_init(init: str) -> str:
    if init not in INITS:
        raise OptionError(f"unknown init {init!r}; valid values: {', '.join(INITS)}")
    return init


def random_shape(model: str) -> str:
    """The standard shape ``model`` names for ``init="random"``, or OptionError listing them."""
    shape = _SHAPE_ALIASES.get(model)
    if shape is None:
        raise OptionError(
            f"init='random' needs a standard shape, not {model!r}; valid shapes: "
            f"{', '.join(RANDOM_SHAPES)}"
        )
    return shape


def default_pooling_for(config) -> str:
    """``last-token`` for decoder-only families, ``mean`` for everything else."""
    model_type = getattr(config, "model_type", "")
    if model_type in _DECODER_TYPES:
        return "last-token"
    if model_type in _ENCODER_TYPES:
        return "mean"
    archs = getattr(config, "architectures", None) or []
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
        return "last-token"
    return "mean"


def max_positions_of(config) -> int | None:
    for attr in ("max_position_embeddings", "n_positions"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


# -- configs (cheap: no weights) -------------------------------------------------------------
def local_model_dir(model: str) -> Path:
    """A local folder holding ``model`` (a folder, the packaged MiniLM, or the HF cache)."""
    resolved = hub.resolve_model(model)
    path = Path(resolved)
    if path.is_dir():
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(resolved, local_files_only=True))
    except Exception as exc:  # not cached: never download
        raise _load_error(model, exc) from None


def _load_error(model: str, exc: Exception) -> RecfeatError:
    err = hub.model_load_error(model, exc)
    if model in _SHAPE_ALIASES:
        return RecfeatError(
            f"{err}; or pass init='random' for the random-weight {_SHAPE_ALIASES[model]} shape"
        )
    return err


def random_config(shape: str):
    """The transformers config of a standard shape (vocab not yet fitted to a tokenizer)."""
    import transformers

    if shape == "bert-base":
        return transformers.BertConfig()
    if shape == "distilbert-base":
        return transformers.DistilBertConfig()
    if shape == "gpt2":
        return transformers.GPT2Config()
    if shape == "minilm-l6":
        return transformers.AutoConfig.from_pretrained(local_model_dir(hub.DEFAULT_MODEL))
    raise OptionError(f"unknown shape {shape!r}; valid shapes: {', '.join(RANDOM_SHAPES)}")


def load_config(model: str, init: str = "pretrained"):
    """The model's config without loading weights (for ``dim`` and family)."""
    import transformers

    if check_init(init) == "random":
        return random_config(random_shape(model))
    folder = local_model_dir(model)
    try:
        return transformers.AutoConfig.from_pretrained(folder)
    except Exception as exc:
        raise _load_error(model, exc) from None


# -- loading -------------------------------------------------------------------------------
def load_transformer(
    model: str,
    init: str = "pretrained",
    max_length: int | None = None,
    corpus: Sequence[str] | None = None,
    *,
    sdpa: bool = True,
) -> LoadedModel:
    """Load ``model`` (hub name or local folder) or build a random standard shape.

    ``max_length`` is checked against the model's position table. ``corpus`` trains the
    byte-level BPE of a random GPT-2 (a small built-in corpus when None). ``sdpa`` asks for
    PyTorch's scaled-dot-product attention where the architecture supports it.
    """
    check_init(init)
    attn = "sdpa" if sdpa else "eager"
    if init == "random":
        loaded = _build_random(random_shape(model), corpus, attn)
    else:
        loaded = _load_pretrained(model, attn)
    loaded.model.eval()
    if max_length is not None:
        if max_length < 2:
            raise OptionError(f"max_length must be at least 2 (got {max_length})")
        if loaded.max_positions is not None and max_length > loaded.max_positions:
            raise OptionError(
                f"max_length {max_length} exceeds the {loaded.max_positions} positions of "
                f"{loaded.source}; use max_length <= {loaded.max_positions}"
            )
        loaded.tokenizer.model_max_length = max_length
    return loaded


def _from_config_or_pretrained(factory, attn: str, *args, **kwargs):
    """Ask for ``attn`` attention; fall back to the default for architectures without it."""
    try:
        return factory(*args, attn_implementation=attn, **kwargs)
    except (ValueError, ImportError):
        return factory(*args, **kwargs)


def _load_pretrained(model: str, attn: str) -> LoadedModel:
    import transformers

    folder = local_model_dir(model)
    try:
        config = transformers.AutoConfig.from_pretrained(folder)
        net = _from_config_or_pretrained(transformers.AutoModel.from_pretrained, attn, folder)
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder, use_fast=True)
    except RecfeatError:
        raise
    except Exception as exc:
        if Path(os.path.expanduser(model)).is_dir():  # a broken folder, not a missing model
            detail = (str(exc).strip().splitlines() or [""])[0][:200]
            raise RecfeatError(
                f"cannot load model folder {folder} ({type(exc).__name__}: {detail}); check "
                "its config.json, weight and tokenizer files"
            ) from None
        raise _load_error(model, exc) from None
    if not isinstance(tokenizer, transformers.PreTrainedTokenizerFast):
        raise RecfeatError(
            f"model {model!r} has no fast tokenizer (tokenizer.json); recfeat needs one for "
            "batched tokenisation: save the model with a fast tokenizer"
        )
    _ensure_pad_token(tokenizer)
    return LoadedModel(
        model=net,
        tokenizer=tokenizer,
        family=config.model_type,
        source=str(folder),
        weights_sha256=weights_sha256(folder),
        random_init=False,
        default_pooling=default_pooling_for(config),
        input_names=_input_names(net),
        max_positions=max_positions_of(config),
    )


def random_config_and_tokenizer(shape: str, corpus: Sequence[str] | None = None):
    """Config and tokenizer of a random standard shape, vocab fitted to the tokenizer."""
    import transformers

    config = random_config(shape)
    if shape == "gpt2":
        tokenizer = gpt2_tokenizer(corpus)
        config.vocab_size = len(tokenizer)
        config.bos_token_id = config.eos_token_id = tokenizer.eos_token_id
    else:
        # BERT-family shapes share MiniLM's tokenizer: bert-base-uncased's WordPiece vocab.
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            local_model_dir(hub.DEFAULT_MODEL), use_fast=True
        )
        _ensure_pad_token(tokenizer)
    return config, tokenizer


def random_weights_sha256(config, tokenizer) -> str:
    """Identity of seeded random weights: config, seed, torch version and tokenizer."""
    import torch

    digest = hashlib.sha256()
    digest.update(config.to_json_string(use_diff=False).encode())
    digest.update(f"seed={RANDOM_SEED};torch={torch.__version__}".encode())
    # The vectors depend on the tokenizer too (GPT-2's is trained on the corpus).
    digest.update(tokenizer.backend_tokenizer.to_str().encode())
    return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What identifies a model's vectors, known without loading its weights."""

    source: str
    weights_sha256: str
    family: str
    default_pooling: str
    hidden_size: int
    random_init: bool
    #: the folder is a sentence-transformers model whose modules.json ends in Normalize (a
    #: recfeat finetune output, all-MiniLM-L6-v2's own folder): its vectors are unit length.
    normalizes: bool = False


#: modules.json of a sentence-transformers folder is a short list; a bigger one is not read.
_MODULES_MAX_BYTES = 64 * 1024


def declares_normalize(folder: Path) -> bool:
    """True when ``folder/modules.json`` (sentence-transformers' module list) has a Normalize
    module. The file is untrusted input: read as JSON only, size-capped, and anything odd
    (missing, too big, not a list of objects) simply means no."""
    path = Path(folder) / "modules.json"
    try:
        if not path.is_file() or path.stat().st_size > _MODULES_MAX_BYTES:
            return False
        modules = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    if not isinstance(modules, list):
        return False
    return any(isinstance(m, dict) and str(m.get("type", "")).rsplit(".", 1)[-1] == "Normalize"
               for m in modules)  # fmt: skip


def describe_model(model: str, init: str = "pretrained") -> ModelInfo:
    """Source, weights hash, family, default pooling and width of ``model``, without building
    it (cached feature runs need the fingerprint but never the network)."""
    if check_init(init) == "random":
        shape = random_shape(model)
        config, tokenizer = random_config_and_tokenizer(shape)
        return ModelInfo(
            source=f"random:{shape}",
            weights_sha256=random_weights_sha256(config, tokenizer),
            family=config.model_type,
            default_pooling=default_pooling_for(config),
            hidden_size=int(config.hidden_size),
            random_init=True,
        )
    folder = local_model_dir(model)
    family, hidden_size, pooling = config_facts(folder)
    return ModelInfo(
        source=str(folder),
        weights_sha256=weights_sha256(folder),
        family=family,
        default_pooling=pooling,
        hidden_size=hidden_size,
        random_init=False,
        normalizes=declares_normalize(folder),
    )


# -- memos: what a model folder's files say, kept by their content ---------------------------
# A fully cached ``recfeat extract`` needs the model's fingerprint (weights hash, family,
# default pooling) but none of its vectors: reading these from small memo files under
# ``cache_root()`` keeps it from hashing 90 MB of weights and from importing transformers
# (which imports torch: most of such a run's time). The memos are files on disk, so
# untrusted: anything unreadable, oversized or malformed is computed again and rewritten.
_MEMO_MAX_BYTES = 4096
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_FAMILY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")
#: Bumped when what a config memo holds, or how it is derived, changes.
CONFIG_MEMO_FORMAT = 1


def _read_memo(path: Path) -> str | None:
    """The text of a memo file, or None when it is missing, unreadable, too big or not ASCII."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(_MEMO_MAX_BYTES + 1)
        if len(data) > _MEMO_MAX_BYTES:
            return None
        return data.decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _write_memo(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, text)
    except OSError:  # a read-only or full cache folder only costs speed
        pass


def _config_memo(folder: Path) -> tuple[Path | None, bytes | None]:
    """(memo file, config.json bytes) for ``folder``: the memo is keyed by the file's
    content and the transformers version that reads it, which is all AutoConfig's answer
    depends on. (None, ...) when either cannot be read: then there is no memo."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    try:
        data = (folder / "config.json").read_bytes()
    except OSError:
        return None, None
    try:
        version = package_version("transformers")  # its metadata: transformers not imported
    except PackageNotFoundError:
        return None, data
    digest = hashlib.sha256(f"config/{CONFIG_MEMO_FORMAT};transformers={version}\0".encode())
    digest.update(data)
    return cache_root() / "configs" / f"{digest.hexdigest()}.json", data


def _parse_config_memo(text: str | None) -> tuple[str, int, str] | None:
    if not text:
        return None
    try:
        memo = json.loads(text)
    except ValueError:
        return None
    if not isinstance(memo, dict):
        return None
    family, width, pooling = memo.get("family"), memo.get("hidden_size"), memo.get("default_pooling")
    if not (isinstance(family, str) and _FAMILY_NAME.fullmatch(family)):
        return None
    if isinstance(width, bool) or not isinstance(width, int) or not 0 < width < 1 << 20:
        return None
    if pooling not in ("mean", "last-token"):  # the only values default_pooling_for gives
        return None
    return family, width, pooling


def config_facts(folder: str | Path) -> tuple[str, int, str]:
    """``(family, hidden size, default pooling)`` of the model in ``folder`` exactly as
    transformers' AutoConfig reads its config.json (:func:`load_config`), memoised under
    ``cache_root()/configs`` so that later calls import neither transformers nor torch."""
    folder = Path(folder)
    memo, data = _config_memo(folder)
    if memo is not None:
        facts = _parse_config_memo(_read_memo(memo))
        if facts is not None:
            return facts
    config = load_config(str(folder))
    facts = (str(config.model_type), int(config.hidden_size), default_pooling_for(config))
    text = json.dumps(dict(zip(("family", "hidden_size", "default_pooling"), facts, strict=True)))
    # memoised only when a later read would accept it, and only when config.json did not
    # change while transformers read it (the key is the content read before)
    if memo is not None and _parse_config_memo(text) == facts:
        try:
            unchanged = (folder / "config.json").read_bytes() == data
        except OSError:
            unchanged = False
        if unchanged:
            _write_memo(memo, text)
    return facts


def _build_random(shape: str, corpus: Sequence[str] | None, attn: str) -> LoadedModel:
    import torch
    import transformers

    config, tokenizer = random_config_and_tokenizer(shape, corpus)
    # Seeded on a forked RNG: the same shape gives the same weights, and the caller's
    # random state is left alone.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_SEED)
        net = _from_config_or_pretrained(transformers.AutoModel.from_config, attn, config)
    return LoadedModel(
        model=net,
        tokenizer=tokenizer,
        family=config.model_type,
        source=f"random:{shape}",
        weights_sha256=random_weights_sha256(config, tokenizer),
        random_init=True,
        default_pooling=default_pooling_for(config),
        input_names=_input_names(net),
        max_positions=max_positions_of(config),
    )


def _input_names(net) -> tuple[str, ...]:
    """Inputs the model takes from a tokenizer. token_type_ids only where the config has a
    segment table: GPT-2's forward accepts them but would add token embeddings for them."""
    import inspect

    names = ["input_ids", "attention_mask"]
    params = inspect.signature(net.forward).parameters
    if "token_type_ids" in params and getattr(net.config, "type_vocab_size", 0):
        names.append("token_type_ids")
    return tuple(names)


def _ensure_pad_token(tokenizer) -> None:
    # GPT-2 has no pad token; its end-of-text token is the usual stand-in. The padding side is
    # left as the tokenizer has it: pooling reads positions from the attention mask.
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        else:
            tokenizer.add_special_tokens({"eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>"})


# -- GPT-2 tokenizer for random weights ------------------------------------------------------
_BUILTIN_CORPUS_WORDS = (
    "the guitar strings sound bright and warm after a week of playing every night",
    "this pedal adds a little hiss but the tone is great for blues and rock",
    "cheap cable, broke after two months; would not buy again from this seller",
    "the book arrived quickly and the story kept me reading until morning",
    "a solid stand that holds my keyboard steady, easy to fold and carry",
    "five stars: the tuner is accurate, clips on well and the battery lasts",
    "great value for the price, although the instructions were confusing",
    "the microphone picks up too much room noise for recording vocals at home",
    "I love these picks, they are thin enough for strumming and do not slip",
    "returned it because the strap was shorter than described in the listing",
)


def builtin_corpus() -> list[str]:
    """A small deterministic English corpus for a GPT-2 BPE when no user corpus is given."""
    lines = list(_BUILTIN_CORPUS_WORDS)
    # Recombine halves so merges see words in many contexts; still fully deterministic.
    halves = [s.split(" ", 6) for s in _BUILTIN_CORPUS_WORDS]
    for i, a in enumerate(halves):
        for j, b in enumerate(halves):
            if i != j:
                lines.append(" ".join(a[:6] + b[6:]))
    return lines


def gpt2_tokenizer(corpus: Sequence[str] | None = None, vocab_size: int = 8000):
    """A byte-level BPE fast tokenizer trained on ``corpus``, cached by a hash of its input."""
    import transformers

    texts = list(corpus) if corpus else builtin_corpus()
    digest = hashlib.sha256(f"bpe;vocab={vocab_size};min_freq=2".encode())
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    folder = cache_root() / "tokenizers" / digest.hexdigest()[:32]
    if (folder / "tokenizer.json").exists():
        tokenizer = transformers.PreTrainedTokenizerFast.from_pretrained(folder)
    else:
        tokenizer = _train_bpe(texts, vocab_size)
        _ensure_pad_token(tokenizer)
        with atomic_dir(folder, force=True) as tmp:
            tokenizer.save_pretrained(tmp)
    _ensure_pad_token(tokenizer)
    return tokenizer


def _train_bpe(texts: list[str], vocab_size: int):
    return train_byte_level_bpe(texts, vocab_size=vocab_size, min_frequency=2)


# -- weights hash -----------------------------------------------------------------------------
_HASH_MEMO: dict[tuple[str, int, int], str] = {}


def weights_sha256(folder: str | Path) -> str:
    """sha256 over the weight files of ``folder`` (names and contents, sorted by name).

    Hashing 100s of MB takes seconds, so each file's digest is cached by (path, size, mtime)
    in memory and under ``cache_root()/hashes``: it is computed once per file version.
    """
    folder = Path(folder)
    files = sorted({p for pat in _WEIGHT_PATTERNS for p in folder.glob(pat) if p.is_file()})
    if not files:
        raise RecfeatError(
            f"model folder {folder} has no weight files ({', '.join(_WEIGHT_PATTERNS)})"
        )
    total = hashlib.sha256()
    for path in files:
        total.update(path.name.encode())
        total.update(_file_sha256(path).encode())
    return total.hexdigest()


def _file_sha256(path: Path) -> str:
    real = path.resolve()  # the HF cache links snapshot files to blobs
    stat = real.stat()
    key = (str(real), stat.st_size, stat.st_mtime_ns)
    if key in _HASH_MEMO:
        return _HASH_MEMO[key]
    memo_file = cache_root() / "hashes" / (hashlib.sha1(json.dumps(key).encode()).hexdigest() + ".txt")
    value = _read_memo(memo_file)
    if value is None or not _SHA256_HEX.fullmatch(value):  # missing or damaged: hash again
        digest = hashlib.sha256()
        with open(real, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                digest.update(chunk)
        value = digest.hexdigest()
        _write_memo(memo_file, value)
    _HASH_MEMO[key] = value
    return value
