"""``recfeat extract``: a dataset's texts -> vectors per review, item or user -> Parquet."""

from __future__ import annotations

import click

import recfeat.progress as progress
from recfeat.api import BACKENDS as VOCABULARY_BACKENDS
from recfeat.api import PRECISIONS
from recfeat.cli.params import gate_interactions_option

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
@click.option("--batch-tokens", type=int, default=None,
              help="Token budget per encoder batch.")  # fmt: skip
@click.option("--max-length", type=int, default=None,
              help="Truncate texts to this many tokens (counted in the manifest).")  # fmt: skip
@click.option("--cleaners", default=None,
              help="Comma-separated cleaner names, or 'none' [default: the default chain, "
                   "html,control-chars,nfkc,pii,whitespace].")  # fmt: skip
@click.option("--keep-pii", is_flag=True,
              help="Leave personal data in the texts: the default chain without pii, which "
                   "masks e-mail addresses, phone and card numbers, URLs and @handles "
                   "(docs/privacy.md).")  # fmt: skip
@click.option("--config", "config_path", default=None,
              help="TOML pipeline (dataset, cleaners, encoder, token_features, [pipeline] level); flags override it.")  # fmt: skip
@click.option("--backend", type=click.Choice(BACKENDS), default=None,
              help="torch (default); onnx/openvino run a folder from `recfeat export` given as "
                   "--encoder DIR; auto: benchmark the "
                   "available backends (int8 included) on a sample of DATA and keep the fastest "
                   "whose vectors hold --min-cosine to torch fp32 and whose cold-start NDCG@10 "
                   "(content) and RMSE (ridge) on a sample split of DATA stay within --max-drop "
                   "(the choice is cached per machine, model and gate settings).")  # fmt: skip
@click.option("--max-drop", default="1%", show_default=True,
              help="--backend auto: largest relative loss of a downstream metric vs torch fp32.")  # fmt: skip
@click.option("--min-cosine", type=float, default=0.99,
              show_default=True, help="--backend auto: floor of the mean cosine to torch fp32.")  # fmt: skip
@gate_interactions_option("--backend auto")
@click.option("--student", "students", multiple=True,
              help="--backend auto: a student folder from `recfeat distill` (repeatable); its "
                   "torch, int8 and bf16 paths become candidates, judged by the same downstream "
                   "gate on the split it was distilled on.")  # fmt: skip
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
              help="Also write sparse token features (hashed-bow, tfidf, splade) to <out>.tokens.npz.")  # fmt: skip
@click.option("--skip-bad-rows", is_flag=True, help="Skip and count malformed input rows.")
@click.option("--encoding", default=None, help="Text encoding of the input (default per format).")
@click.option("--option", "-o", "options", multiple=True, metavar="KEY=VALUE",
              help="Loader option, repeatable (e.g. -o text_col=review).")  # fmt: skip
@click.option("--chunk-size", type=int, default=2048, show_default=True,
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
@click.option("--gpus-per-actor", type=float, default=0.0, show_default=True,
              help="With --ray: GPUs each actor reserves (> 0 encodes on cuda).")  # fmt: skip
@click.option("--cpus-per-actor", type=float, default=1.0,
              show_default=True, help="With --ray: CPUs each actor reserves.")  # fmt: skip
@click.option("--batch-rows", type=int, default=1024, show_default=True,
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
                    cleaners, keep_pii, config_path, backend, max_drop, min_cosine, gate_interactions,
                    students, cache_dir, no_cache, aggregate, user_from, train_path, token_features,
                    skip_bad_rows, encoding, options, chunk_size, use_ray, ray_address, actors,
                    gpus_per_actor, cpus_per_actor, batch_rows, stream, out) -> None:  # fmt: skip
    """Turn the texts of DATA (a file or folder; 'sample' for the SYNTHETIC sample) into
    feature vectors and write them to --out."""
    import recfeat.api as api
    from recfeat.cli.terminal import clean
    from recfeat.errors import UsageError

    if cache_dir and no_cache:
        raise UsageError("--cache DIR and --no-cache contradict each other; pass one")
    ray = None
    if use_ray:
        ray = {"address": ray_address, "actors": actors, "cpus_per_actor": cpus_per_actor,
               "gpus_per_actor": gpus_per_actor, "batch_rows": batch_rows}  # fmt: skip
    settings = api.extract_settings(
        config_path, data=data, out=None if use_ray else out, format=fmt, loader_options=options, encoding=encoding,
        skip_bad_rows=skip_bad_rows, level=level, encoder=encoder_name, backend=backend,
        pooling=pooling, precision=precision, batch_tokens=batch_tokens, max_length=max_length,
        device="cuda" if use_ray and gpus_per_actor > 0 else None,  # an actor with a GPU uses it
        cleaners=cleaners, keep_pii=keep_pii, token_features=token_features,
        aggregate=aggregate, user_from=user_from, train=train_path, cache=False if no_cache else cache_dir,
        chunk_size=chunk_size, stream=stream, ray=ray, min_cosine=min_cosine,
        max_drop=max_drop, gate_interactions=gate_interactions, students=list(students) or None,
    )  # fmt: skip
    say = lambda msg: progress.say(clean(msg))  # noqa: E731 - names from the data
    result = api.extract_file(out=out, settings=settings, echo=say)
    click.echo(clean(summary_line(result, out)))


def summary_line(result, out) -> str:
    """What was written, one line: counts from the manifest and the run record."""
    m, r = result.manifest, result.run
    dim = result.vectors.shape[1] if hasattr(result, "vectors") else result.dim
    rows = len(result.ids) if hasattr(result, "ids") else result.rows
    if m.get("engine") == "ray":
        return (f"wrote {rows:,} {m['level']} vectors (dim {dim}) in {m['shards']:,} shards to "
                f"{str(out).rstrip('/')}/ (manifest.json)")  # fmt: skip
    return (
        f"wrote {out}: {rows:,} {m['level']} vectors x {dim} dims; "
        f"{r['encoded_texts']:,} texts encoded, {r['cached_texts']:,} from cache, "
        f"{m['empty_texts']:,} empty, {m['truncated_texts']:,} truncated; {r['elapsed_s']:.1f} s"
    )


def register(cli: click.Group) -> None:
    cli.add_command(extract_command)
