"""Choosing a backend for this machine and task (``--backend auto``): recfeat's own backends
built from its encoders, timing on a sample, the downstream gate and the rule that judges
each drop (with ``recfeat.evaluation.paired``'s intervals)."""
