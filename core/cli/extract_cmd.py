"""``recfeat extract``: a dataset's texts -> vectors per review, item or user -> Parquet."""

from __future__ import annotations

from typing import Any

import click

from recfeat.cli.params import gate_interactions_option
from recfeat.data.interactions import read_train
from recfeat.encode.vocabulary import BACKENDS as VOCABULARY_BACKENDS
from recfeat.encode.vocabulary import PRECISIONS
from recfeat.extraction.inputs import ExtractRun
from recfeat.extraction.outputs import (
    cache_files,
    check_out_path,
    check_outputs,
    save,
    summary_line,
)

FORMATS_HELP = (
    "auto, amazon, movielens-100k, movielens (ml-latest), csv, jsonl, parquet, "
    "synthetic-books (sample)"
)
BACKENDS = (*VOCABULARY_BACKENDS, "auto")
EPILOG = """\b
Empty texts: a text that is empty or whitespace-only after cleaning gets a zero vector, is
not encoded, and is counted as empty_texts in the manifest (item/user means skip it).
Texts over --max-length are truncated and counted as truncated_texts.
\b
Vectors are cached by (cleaned text, encoder weights, pooling, normalisation, max_length,
backend, precision) in $RECFEAT_CACHE_DIR (default ~/.cache/recfeat) or --cache DIR; a
re-run encodes only new or changed texts, and a killed run resumes where it stopped.
"""


def _encoder_spec(
    config: dict[str, Any], name: str | None, backend: str | None, onnx_dir: str | None,
    cli_options: dict[str, Any],
) -> tuple[str, dict[str, Any]]:  # fmt: skip
    """(registry name, options) in the one backend vocabulary: the config's encoder,
    overridden by command-line flags. ``--encoder DIR`` names an export folder; ``--onnx DIR``
    is the older spelling of the same, kept with ``--backend onnx|openvino``."""
    from recfeat.config import component_spec
    from recfeat.encode.vocabulary import is_export_folder, resolve_encoder
    from recfeat.errors import UsageError
    from recfeat.extraction.pipeline import DEFAULT_ENCODER

    base_name, base_options = (
        component_spec(config["encoder"]) if "encoder" in config else (DEFAULT_ENCODER, {})
    )
    if onnx_dir:
        if backend not in ("onnx", "openvino"):
            raise UsageError("--onnx DIR needs --backend onnx (or openvino)")
        if name and name != backend:
            raise UsageError(
                f"--encoder {name} and --backend {backend} conflict: the model comes from "
                "--onnx DIR; drop --encoder"
            )
        if not is_export_folder(onnx_dir):
            # the encoder names what is missing (no folder, no manifest.json) in one line
            return backend, {"path": onnx_dir, **cli_options}
        name, base_options = onnx_dir, {}
    elif backend in ("onnx", "openvino") and not is_export_folder(name or base_name):
        raise UsageError(
            f"--backend {backend} needs --onnx DIR (or --encoder DIR): a folder from "
            "`recfeat export`"
        )
    if backend == "auto" and "precision" in cli_options:
        raise UsageError("--backend auto chooses the precision itself; drop --precision")
    if name and name != base_name:
        base_options = {}  # options of another component do not carry over
    return resolve_encoder(
        name or base_name, backend=None if backend == "auto" else backend,
        **{**base_options, **cli_options},
    )  # fmt: skip


@click.command("extract", epilog=EPILOG)
@click.argument("data", required=False)
@click.option(
    "--format", "fmt", default=None, help=f"Input format: {FORMATS_HELP} [default: auto]."
)
@click.option(
    "--level", type=click.Choice(["review", "item", "user"]), default=None,
    help="One vector per review, per item (item text, or its reviews aggregated) or per user "
         "[default: the config's [pipeline] level, else review].",
)  # fmt: skip
@click.option("--encoder", "encoder_name", default=None,
              help="Encoder name, Hugging Face model, or a folder from `recfeat export` "
                   "[default: minilm].")  # fmt: skip
@click.option("--pooling", default=None, help="cls, mean, max or last-token (encoder default).")
@click.option("--precision", type=click.Choice(PRECISIONS), default=None,
              help="Numeric precision (bf16 is fast on CPUs with AMX/AVX-512-bf16; int8 runs "
                   "an export's quantised graph).")  # fmt: skip
@click.option("--batch-tokens", type=click.IntRange(min=1), default=None,
              help="Token budget per encoder batch.")  # fmt: skip
@click.option("--max-length", type=click.IntRange(min=2), default=None,
              help="Truncate texts to this many tokens (counted in the manifest).")  # fmt: skip
@click.option("--cleaners", default=None,
              help="Comma-separated cleaner names, or 'none' [default: the default chain].")  # fmt: skip
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="TOML pipeline (dataset, cleaners, encoder, token_features, [pipeline] level); flags override it.")  # fmt: skip
@click.option("--backend", type=click.Choice(BACKENDS), default=None,
              help="torch (default); onnx/openvino run a folder from `recfeat export` given as "
                   "--encoder DIR (or --onnx DIR); auto: benchmark the "
                   "available backends (int8 included) on a sample of DATA and keep the fastest "
                   "whose vectors hold --min-cosine to torch fp32 and whose cold-start NDCG@10 "
                   "(content) and RMSE (ridge) on a sample split of DATA stay within --max-drop "
                   "(the choice is cached per machine, model and gate settings).")  # fmt: skip
@click.option("--max-drop", default="1%", show_default=True,
              help="--backend auto: largest relative loss of a downstream metric vs torch fp32.")  # fmt: skip
@click.option("--min-cosine", type=click.FloatRange(0, 1, min_open=True), default=0.99,
              show_default=True, help="--backend auto: floor of the mean cosine to torch fp32.")  # fmt: skip
@gate_interactions_option("--backend auto")
@click.option(
    "--onnx", "onnx_dir", default=None, help="Same as --encoder DIR with --backend onnx/openvino (older spelling)."
)
@click.option("--cache", "cache_dir", default=None,
              help="Vector cache folder [default: $RECFEAT_CACHE_DIR or ~/.cache/recfeat].")  # fmt: skip
@click.option("--no-cache", is_flag=True, help="Neither read nor write the vector cache.")
@click.option("--aggregate", type=click.Choice(["mean", "rating-weighted"]), default=None,
              help="Item/user vectors as the mean of review (or item) vectors; given at item "
                   "level, it aggregates reviews even when the data has item texts.")  # fmt: skip
@click.option("--user-from", type=click.Choice(["auto", "reviews", "items"]), default="auto",
              show_default=True, help="User profiles from their reviews or their rated items' vectors.")  # fmt: skip
@click.option("--train", "train_path", default=None,
              help="Training interactions for user/item profiles (a recfeat split .json, or a "
                   "table with user,item columns) so evaluation data never leaks [default: all].")  # fmt: skip
@click.option("--token-features", default=None,
              help="Also write sparse token features (hashed-bow, tfidf) to <out>.tokens.npz.")  # fmt: skip
@click.option("--skip-bad-rows", is_flag=True, help="Skip and count malformed input rows.")
@click.option("--encoding", default=None, help="Text encoding of the input (default per format).")
@click.option("--option", "-o", "options", multiple=True, metavar="KEY=VALUE",
              help="Loader option, repeatable (e.g. -o text_col=review).")  # fmt: skip
@click.option("--chunk-size", type=click.IntRange(min=1), default=2048, show_default=True,
              help="Texts encoded and committed to the cache at a time (the resume unit).")  # fmt: skip
@click.option(
    "--ray", "use_ray", is_flag=True,
    help="Run on Ray Data (pip install 'recfeat[ray]'): the workers read DATA, encode on an "
         "actor pool and write Parquet shards into --out DIR/ (manifest.json last); a re-run "
         "skips shards already written. See docs/scale.md.",
)  # fmt: skip
@click.option("--ray-address", default=None, metavar="auto|HOST:PORT",
              help="With --ray: join this Ray cluster [default: start Ray on this machine].")  # fmt: skip
@click.option("--actors", default="1", show_default=True, metavar="N|MIN-MAX",
              help="With --ray: encoder actors (one model each); MIN-MAX lets Ray scale the pool.")  # fmt: skip
@click.option("--gpus-per-actor", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="With --ray: GPUs each actor reserves (> 0 encodes on cuda).")  # fmt: skip
@click.option("--cpus-per-actor", type=click.FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, help="With --ray: CPUs each actor reserves.")  # fmt: skip
@click.option("--batch-rows", type=click.IntRange(min=1), default=1024, show_default=True,
              help="With --ray: input rows per batch = per shard (the resume unit); lower it "
                   "when an actor runs out of memory.")  # fmt: skip
@click.option("--stream/--no-stream", "stream", default=None,
              help="Read the input in batches and write vectors as they come, in memory set by "
                   "the batch, not the corpus [default: whenever the input and options allow: "
                   "Amazon/CSV/JSONL/Parquet files or folders of shards, no --train, "
                   "--token-features, --ray or --backend auto]. --stream insists (an error says "
                   "why it cannot); --no-stream loads the whole dataset first. Same file either way.")  # fmt: skip
@click.option(
    "--out", required=True,
    help="Output file (.parquet); <stem>.manifest.json and <stem>.run.json (timings, cache "
         "hits, paths) go beside it, all committed as one unit. Never one of the inputs.",
)  # fmt: skip
def extract_command(data, fmt, level, encoder_name, pooling, precision, batch_tokens, max_length,
                    cleaners, config_path, backend, max_drop, min_cosine, gate_interactions,
                    onnx_dir, cache_dir,
                    no_cache, aggregate, user_from, train_path, token_features, skip_bad_rows,
                    encoding, options, chunk_size, use_ray, ray_address, actors,
                    gpus_per_actor, cpus_per_actor, batch_rows, stream, out) -> None:  # fmt: skip
    """Turn the texts of DATA (a file or folder; 'sample' for the SYNTHETIC sample) into
    feature vectors and write them to --out."""
    from recfeat.cli.terminal import clean
    from recfeat.errors import UsageError

    if cache_dir and no_cache:
        raise UsageError("--cache DIR and --no-cache contradict each other; pass one")
    if data is None and fmt not in ("sample", "synthetic-books"):
        raise UsageError(
            "missing DATA: the input file or folder ('sample' for the SYNTHETIC sample)"
        )
    if use_ray:  # the Ray Data engine: --out is a folder of shards
        from recfeat.cli.extract_ray import run_ray

        run_ray(click.get_current_context().params, encoder_spec=_encoder_spec)
        return
    out_path = check_out_path(out)
    from recfeat.bench.gate import parse_drop

    drop = parse_drop(max_drop)  # a bad --max-drop fails before any work
    from pathlib import Path

    folder_inputs = {
        label: value for label, value in (("--encoder", encoder_name), ("--onnx", onnx_dir))
        if value and Path(value).expanduser().exists()
    }  # fmt: skip
    check_outputs(out_path, {
        "DATA": data if data not in (None, "sample") or Path(str(data)).exists() else None,
        "--config": config_path, "--train": train_path, **folder_inputs,
        **cache_files(cache_dir, no_cache),
    })  # fmt: skip
    config: dict[str, Any] = {}
    if config_path:
        from recfeat.config import load_config

        config = load_config(config_path)
    cli_options = {
        k: v
        for k, v in (
            ("pooling", pooling),
            ("precision", precision),
            ("batch_tokens", batch_tokens),
            ("max_length", max_length),
        )  # fmt: skip
        if v is not None
    }
    name, enc_options = _encoder_spec(config, encoder_name, backend, onnx_dir, cli_options)
    run = ExtractRun(
        data=data, fmt=fmt, config=config, loader_options=options, encoding=encoding,
        skip_bad_rows=skip_bad_rows, cleaners=cleaners, token_features=token_features,
        echo=lambda msg: click.echo(clean(msg), err=True),  # names from the data
    )  # fmt: skip
    level = run.level(level)
    if level == "review" and aggregate:
        raise UsageError("--aggregate applies to --level item or user, not review")
    from recfeat.plugin.registry import get_registry

    encoder = get_registry("encoder").create(name, **enc_options)  # validated, not loaded
    cleaner = run.cleaner()
    featurizer = run.featurizer()
    if stream is not False:
        from recfeat.extraction.stream import why_not_streamed

        path, fmt_used, loader_options = run.source()
        why = why_not_streamed(
            path, fmt_used, loader_options, level=level, user_from=user_from, train=train_path,
            token_features=featurizer, ray=use_ray, backend=backend,
        )  # fmt: skip
        if stream and why:
            raise UsageError(f"--stream: this run cannot stream ({why}); drop --stream")
        if why is None:
            from recfeat.extraction.outputs import stream_save

            result = stream_save(
                out_path, path, level, encoder, cleaner, fmt=fmt_used, options=loader_options,
                aggregate=aggregate, user_from=user_from, cache=False if no_cache else cache_dir,
                chunk_size=chunk_size, echo=lambda msg: click.echo(clean(msg), err=True),
            )  # fmt: skip
            click.echo(summary_line(result, out_path))
            return
    dataset = run.load()
    if backend == "auto":
        from recfeat.bench.auto_backend import auto_encoder

        encoder = auto_encoder(name, enc_options, dataset, level, cleaner,
                               say=lambda msg: click.echo(msg, err=True),
                               min_cosine=min_cosine, max_drop=drop,
                               gate_interactions=gate_interactions)  # fmt: skip
    train = read_train(train_path, dataset.interactions) if train_path else None
    from recfeat.extraction.pipeline import extract

    result = extract(
        dataset, level, encoder, cleaner, aggregate=aggregate, user_from=user_from,
        train_interactions=train, cache=False if no_cache else cache_dir,
        token_features=featurizer, chunk_size=chunk_size, ray=use_ray,
    )  # fmt: skip
    save(result, out_path)
    click.echo(summary_line(result, out_path))


def register(cli: click.Group) -> None:
    cli.add_command(extract_command)
