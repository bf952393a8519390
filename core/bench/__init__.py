"""Benchmarking: timing and machine facts, the backends and peers the harness times, the
throughput and accuracy suites, reports, and ``--backend auto``."""
