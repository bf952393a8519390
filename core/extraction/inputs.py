"""The inputs of one ``recfeat extract`` run: the dataset, cleaner chain, token features and
level, each resolved from command-line flags over a config file over the defaults."""

from __future__ import annotations

import time
from collections.abc import Callable


class ExtractRun:
    """Resolves the dataset, cleaners and token features from flags over a config file."""

    def __init__(self, *, data, fmt, config, loader_options, encoding, skip_bad_rows, cleaners,
                 token_features, echo: Callable[[str], None] | None = None):  # fmt: skip
        self.data = data
        self.fmt = fmt
        self.config = config
        self.loader_options = loader_options
        self.encoding = encoding
        self.skip_bad_rows = skip_bad_rows
        self.cleaners = cleaners
        self.token_features = token_features
        self.echo = echo or (lambda msg: None)

    def level(self, flag: str | None) -> str:
        """--level, else ``[pipeline] level``, else "review"."""
        from recfeat.config import pipeline_setting

        return pipeline_setting(self.config, "level", flag, "review")

    def load(self):
        from recfeat.components.dataset import load_dataset

        path, fmt, options = self.source()
        started = time.perf_counter()
        dataset = load_dataset(path, format=fmt, **options)
        synthetic = dataset.report.get("synthetic") and "SYNTHETIC" not in dataset.name
        label = " (SYNTHETIC sample data)" if synthetic else ""
        self.echo(
            f"loaded {dataset.name}{label}: {len(dataset.interactions):,} interactions, "
            f"{0 if dataset.reviews is None else len(dataset.reviews):,} reviews, "
            f"{0 if dataset.items is None else len(dataset.items):,} item texts "
            f"({time.perf_counter() - started:.1f} s)"
        )
        return dataset

    def source(self):
        """``(path, format, loader options)`` from flags over the config (path None and
        format "synthetic-books" for the sample); what ``load`` reads, and what a streamed
        run (``recfeat.extraction.stream``) reads in batches instead."""
        from recfeat.config import component_spec, parse_key_values

        fmt, options = self.fmt, {}
        if "dataset" in self.config:
            cfg_fmt, cfg_options = component_spec(self.config["dataset"])
            if fmt in (None, cfg_fmt):
                fmt, options = cfg_fmt, dict(cfg_options)
        fmt = fmt or "auto"
        options.update(parse_key_values(self.loader_options, example="text_col=review"))
        if self.encoding:
            options["encoding"] = self.encoding
        if self.skip_bad_rows:
            options["skip_bad_rows"] = True
        path = self.data
        if path in (None, "sample") and fmt in ("auto", "sample", "synthetic-books"):
            path, fmt = None, "synthetic-books"
        return path, fmt, options

    def cleaner(self):
        from recfeat.extraction.cleaning import build_cleaner_chain

        if self.cleaners is not None:
            specs = "" if self.cleaners.strip().lower() == "none" else self.cleaners
            return build_cleaner_chain(specs)
        return build_cleaner_chain(self.config.get("cleaners"))

    def featurizer(self):
        from recfeat.extraction.pipeline import make_token_featurizer

        spec = self.token_features or self.config.get("token_features")
        return make_token_featurizer(spec) if spec else None
