"""What the routes share: the settings, the encoder pipeline, the item store, the
recommender, the metrics, and two flags (ready: loaded and warmed up; closing: a shutdown
signal arrived, new work is refused)."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class ServeSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    max_batch_tokens: int = 8192
    batch_window_ms: float = 5.0
    max_queue: int = 256
    max_inputs: int = 256
    max_chars: int = 16384
    max_body_bytes: int = 8 * 1024 * 1024
    request_timeout: float = 30.0
    body_timeout: float = 10.0
    cache_size: int = 10000
    max_items: int = 1_000_000
    index: str = "auto"  # text-profile search: exact, hnsw or auto (recfeat.serve.index)


@dataclasses.dataclass
class ServeState:
    settings: ServeSettings
    embedder: Any  # recfeat.serve.embedder.Embedder
    store: Any  # recfeat.serve.items.ItemStore
    recommender: Any  # recfeat.serve.recommender.Recommender
    metrics: Any  # recfeat.serve.metrics.Metrics
    model_label: str  # the name responses carry
    model_names: frozenset[str]  # names /v1/embeddings accepts
    backend: str
    precision: str
    device: str
    ready: bool = False
    closing: bool = False
    in_flight: int = 0
    load_error: str | None = None
    index: str = "exact"  # the text-profile search in use, once loaded
