"""Prometheus metrics of one server (prometheus_client, its own registry so two servers in
one process, as in tests, never clash). Names are listed in docs/serving.md."""

from __future__ import annotations

# Seconds: from a cached hit (~0.1 ms) to a long batch on a busy CPU.
TIME_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                5.0, 10.0, 30.0)  # fmt: skip
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
TOKEN_BUCKETS = (16, 64, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)


class Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = reg = CollectorRegistry()
        self.requests = Counter("recfeat_requests", "HTTP requests by route and status code",
                                ["route", "status"], registry=reg)  # fmt: skip
        self.request_seconds = Histogram("recfeat_request_seconds", "Request latency by route",
                                         ["route"], buckets=TIME_BUCKETS, registry=reg)  # fmt: skip
        self.in_flight = Gauge("recfeat_requests_in_flight",
                               "Requests received and not yet answered (probes excluded)",
                               registry=reg)  # fmt: skip
        self.queue_depth = Gauge("recfeat_queue_depth", "Requests waiting for the encoder",
                                 registry=reg)  # fmt: skip
        self.batch_size = Histogram("recfeat_batch_size", "Texts per engine call",
                                    buckets=SIZE_BUCKETS, registry=reg)  # fmt: skip
        self.batch_requests = Histogram("recfeat_batch_requests",
                                        "Requests merged into one engine call",
                                        buckets=SIZE_BUCKETS, registry=reg)  # fmt: skip
        self.batch_tokens = Histogram("recfeat_batch_tokens", "Tokens per engine call",
                                      buckets=TOKEN_BUCKETS, registry=reg)  # fmt: skip
        self.tokenize_seconds = Histogram("recfeat_tokenize_seconds",
                                          "Tokenisation time per engine call",
                                          buckets=TIME_BUCKETS, registry=reg)  # fmt: skip
        self.inference_seconds = Histogram("recfeat_inference_seconds",
                                           "Model time per engine call (engine call less tokenisation)",
                                           buckets=TIME_BUCKETS, registry=reg)  # fmt: skip
        self.queue_wait_seconds = Histogram("recfeat_queue_wait_seconds",
                                            "Time a request waited before its engine call started",
                                            buckets=TIME_BUCKETS, registry=reg)  # fmt: skip
        self.cache_hits = Counter("recfeat_cache_hits", "Texts answered from the LRU cache",
                                  registry=reg)  # fmt: skip
        self.cache_misses = Counter("recfeat_cache_misses", "Texts sent to the encoder",
                                    registry=reg)  # fmt: skip
        self.truncated = Counter("recfeat_truncated_texts", "Texts cut at the model's max length",
                                 registry=reg)  # fmt: skip
        # counts by kind only: a value never leaves the cleaner (docs/privacy.md)
        self.masked = Counter("recfeat_masked_values", "Values in request texts the cleaners "
                              "masked (pii: email, phone, card, url, handle), by kind",
                              ["kind"], registry=reg)  # fmt: skip

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
