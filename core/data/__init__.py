"""Datasets in memory (``RecData``), feature files on disk and in memory (``Features``,
``ReviewVectors``), split files and training interactions, and input validation shared by
every dataset loader. The bottom of the engine: it imports no other recfeat package above
the plugin kernel and the leaf utilities."""
