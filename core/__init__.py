"""recfeat: language-model features for recommender systems, and proof of what they are worth.

The package root stays light (no torch, no transformers) so the CLI starts instantly: the
Python API (``recfeat.api``) and the main classes load on first attribute access.

    import recfeat
    data = recfeat.load_dataset("../shared/data/movielens_100k")
    items = recfeat.extract(data, level="item")           # all-MiniLM-L6-v2 on torch
    result = recfeat.evaluate(data, items.features(), models=["bias", "als", "content"])

``docs/python.md`` walks through the whole job.
"""

from __future__ import annotations

__version__ = "0.1.0"

from recfeat.errors import RecfeatError  # noqa: E402
from recfeat.plugin.hookspecs import hookimpl  # noqa: E402
from recfeat.plugin.registry import get_registry  # noqa: E402

# name -> module that defines it; imported on first access (PEP 562).
_LAZY = {
    **dict.fromkeys(
        ("load_dataset", "encoder", "model", "extract", "extract_file", "make_split", "evaluate", "read_features",
         "train", "save_model", "load_model", "recommend", "export", "verify_export",
         "bench_throughput", "choose_backend", "finetune", "distill", "adapt", "explain", "explain_eval",
         # the rest of the Python API, each the function behind one command
         "extract_settings", "evaluate_settings", "train_settings", "recommend_settings",
         "demo_settings", "run_demo", "export_settings", "bench_throughput_report",
         "bench_accuracy_report", "bench_backends", "cleaner_chain", "tokenizer",
         "detect_format", "dataset_info", "write_sample", "list_plugins", "list_components",
         "validate_config"),
        "recfeat.api",
    ),  # fmt: skip
    "RecData": "recfeat.data.recdata",
    "Features": "recfeat.data.features",
    "Split": "recfeat.evaluation.splits",
    "TrainedModel": "recfeat.training.bundle",
    "rmse_scorer": "recfeat.components.scoring",
    "ranking_scorer": "recfeat.components.scoring",
}

__all__ = ["__version__", "RecfeatError", "hookimpl", "get_registry", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'recfeat' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
