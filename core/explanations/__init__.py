"""Explanations of recommendations from the user's OWN evidence, and a measure of whether
they are faithful to the model (docs/explain.md).

- ``history``: the user's training history and the history items that add most to an
  item's score, from the model's own scoring (``RecModel.history_contributions``);
- ``text``: sentences of the user's own reviews closest to the item, and the tokens the
  user's reviews share with the item's token features;
- ``explanation``: the one shape an explanation has (the Python API, ``recfeat recommend
  --explain`` and ``serve``'s ``"explain": true`` all build it here);
- ``faithfulness``: the deletion and sufficiency tests of ``recfeat explain-eval``;
  ``study`` runs them over models on a split, ``report`` writes JSON, markdown and a plot.

An explanation never quotes another user's review: text evidence is read only from the
rows of the user's own reviews (tests/test_explain.py plants one to check).
"""
