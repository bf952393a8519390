"""Splits (random, temporal, cold start) and the evaluation of models on them."""
