"""The benchmark harness: statistics and environment capture, GEMM ceilings, the peers it
times beside recfeat's own backends, the throughput and accuracy suites, summaries and
reports. Choosing a backend (``--backend auto``, the downstream gate) is
``recfeat.selection``'s."""
