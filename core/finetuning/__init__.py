"""Fine-tune an encoder on a dataset's interactions (``recfeat finetune``, ``recfeat.finetuning``).

- ``settings``: :class:`FinetuneSettings` and :func:`finetune_settings` (defaults < flags);
- ``pairs``: training pairs from the training part of a split (next-item, same-item,
  review-item), leak-proof by construction;
- ``trainer``: sentence-transformers' trainer and in-batch-negatives loss, checkpointed,
  seeded, resumable;
- ``lineage``: what a fine-tuned model touched (``lineage.json``, ``split.json``) and
  :func:`check_no_leak`, which refuses an evaluation on rows or items it was trained on;
- ``run``: one job end to end, the output folder committed as one unit;
- ``adaptors``: cheap adaptors on frozen vectors (whiten, pca, linear, mlp) and their safe
  files, :func:`load_adaptor` (``.transform(vectors)``, what serve applies to queries);
- ``adapt``: one ``recfeat adapt`` job (fit on a split's training part, write the adapted
  features with the adaptor as one unit);
- ``guard``: the check ``evaluate`` runs on every features object (encoder and adaptor
  lineage against its split).

Importing this package is light: torch, transformers and sentence-transformers load inside
the functions that train.
"""

from __future__ import annotations

from .adaptors import KINDS as ADAPTOR_KINDS
from .adaptors import Adaptor, load_adaptor
from .lineage import TrainingLeakError, check_no_leak, find_leaks, read_lineage
from .settings import PAIR_KINDS, FinetuneSettings, finetune_settings

__all__ = ["ADAPTOR_KINDS", "PAIR_KINDS", "Adaptor", "FinetuneSettings", "TrainingLeakError",
           "check_no_leak", "find_leaks", "finetune_settings", "load_adaptor", "read_lineage"]
