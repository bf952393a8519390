"""The ``recfeat`` command line. Each command lives in its own module, named for it."""
