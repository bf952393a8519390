"""Helpers of benchmarks/bench_serve.py: the load generator (``loadgen``), the servers it
starts (``servers``) and the figures, targets and report it writes (``report``)."""
