"""Datasets in memory (``RecData``), feature files on disk, and input validation shared by
every dataset loader."""
