"""Training a model on a whole dataset, ranking items with it, and the safe model file it is
saved in (``recfeat train`` / ``recommend``, ``recfeat serve``)."""
