"""Tiny random transformer folders for the exporter tests (seconds, not minutes, to export).

Each folder is a normal Hugging Face model folder (config, safetensors, fast tokenizer), so
the exporter loads it through the same path as a real model.
"""

from __future__ import annotations

from pathlib import Path

SAMPLE_TEXTS = [
    "Great strings.",
    "ok",
    "The tuner clips on well and is accurate, but the battery door feels flimsy.",
    "I bought this cable for my bass amp. After two months the jack started crackling whenever "
    "I moved it, so I had to replace it. Customer service never answered my email.",
    "Sehr gutes Preis-Leistungs-Verhältnis, der Klang ist warm und klar.",
    "这个麦克风的声音很清楚",
    "Five stars!!! Would buy again :)",
]


def make_tiny(kind: str, out: Path) -> Path:
    """Save a 2-layer, 64-wide model of ``kind`` (bert, distilbert, gpt2, electra) to ``out``."""
    import torch
    import transformers

    from recfeat.encode.hf_models import gpt2_tokenizer
    from recfeat.encode.hub import packaged_minilm_path

    if kind == "gpt2":
        tok = gpt2_tokenizer()
    else:
        tok = transformers.AutoTokenizer.from_pretrained(packaged_minilm_path(), use_fast=True)
    vocab = len(tok)
    if kind == "bert":
        config = transformers.BertConfig(
            vocab_size=vocab, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=128, max_position_embeddings=512,
        )  # fmt: skip
    elif kind == "distilbert":
        config = transformers.DistilBertConfig(
            vocab_size=vocab, dim=64, n_layers=2, n_heads=4, hidden_dim=128
        )
    elif kind == "gpt2":
        config = transformers.GPT2Config(
            vocab_size=vocab, n_embd=64, n_layer=2, n_head=4, n_positions=512,
            bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id,
        )  # fmt: skip
    elif kind == "electra":
        config = transformers.ElectraConfig(
            vocab_size=vocab, embedding_size=64, hidden_size=64, num_hidden_layers=1,
            num_attention_heads=4, intermediate_size=128,
        )  # fmt: skip
    else:
        raise ValueError(kind)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = transformers.AutoModel.from_config(config)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def cosines(a, b):
    from recfeat.encode.similarity import cosine_rows

    return cosine_rows(a, b)
