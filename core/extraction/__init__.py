"""Feature extraction: clean, encode (through ``recfeat.encode``), aggregate to review,
item and user level, cache, and write feature files."""
