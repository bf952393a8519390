"""Encode with Ray Data (``--ray``): chunks go to a pool of encoder actors, on this machine
or a cluster, and come back to the pipeline, which commits each to the cache as it lands.

Each Ray row is one whole chunk (its texts as a list), so a chunk is encoded in one call
exactly as the local runner would, and resuming works the same way with or without Ray.
The actors rebuild the encoder from its registry name and options: a loaded model is never
pickled, and each actor loads its own copy lazily.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from recfeat.errors import require


class EncoderActor:
    """Ray Data callable class: one encoder per actor, applied to batches of chunks."""

    def __init__(self, encoder_name: str, options: dict[str, Any]):
        from recfeat.plugin.registry import get_registry

        self.encoder = get_registry("encoder").create(encoder_name, **options)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out_vectors, out_stats = [], []
        for texts in batch["texts"]:
            vectors = np.asarray(self.encoder.encode([str(t) for t in texts]), dtype=np.float32)
            stats = dict(getattr(self.encoder, "last_stats", None) or {})
            # one object per row: Arrow cannot hold ragged 2-D arrays directly
            out_vectors.append(vectors.tobytes())
            out_stats.append(
                [int(stats.get(k, 0) or 0) for k in ("tokens", "truncated_texts", "tokens_dropped")]
                + [vectors.shape[1] if vectors.ndim == 2 else 0]
            )
        return {
            "chunk": batch["chunk"],
            "vectors": np.array(out_vectors, dtype=object),
            "stats": np.array(out_stats, dtype=np.int64),
        }


def _options_for_actor(encoder) -> dict[str, Any]:
    # Only options whose value differs from None travel; the class's defaults do the rest.
    return {k: v for k, v in encoder.get_options().items() if v is not None}


def ray_runner(encoder, *, actors: int = 1, address: str | None = None):
    """A pipeline runner (see ``recfeat.extraction.pipeline.Runner``) that encodes through Ray Data."""
    ray = require("ray", "ray", "--ray")
    require("ray.data", "ray", "--ray")
    name = encoder.name
    options = _options_for_actor(encoder)

    def run(jobs: list[list[str]]) -> Iterator[tuple[int, np.ndarray, dict[str, Any]]]:
        if not jobs:
            return
        import pandas as pd

        if not ray.is_initialized():
            ray.init(
                address=address or os.environ.get("RAY_ADDRESS"),
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
                # plugins and offline settings must reach the actors too
                runtime_env={"env_vars": _forwarded_env()},
            )
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.execution_options.preserve_order = True
        frame = pd.DataFrame({"chunk": np.arange(len(jobs)), "texts": jobs})
        ds = ray.data.from_pandas(frame).map_batches(
            EncoderActor,
            fn_constructor_kwargs={"encoder_name": name, "options": options},
            batch_size=1,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actors),
        )
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for chunk, blob, stats in zip(
                batch["chunk"], batch["vectors"], batch["stats"], strict=True
            ):
                dim = int(stats[3])
                vectors = np.frombuffer(blob, dtype=np.float32).reshape(-1, dim)
                yield (
                    int(chunk),
                    vectors,
                    {
                        "tokens": int(stats[0]),
                        "truncated_texts": int(stats[1]),
                        "tokens_dropped": int(stats[2]),
                    },
                )

    return run


def _forwarded_env() -> dict[str, str]:
    keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "RECFEAT_LOAD_PLUGINS", "RECFEAT_CACHE_DIR")
    return {k: os.environ[k] for k in keys if k in os.environ}
