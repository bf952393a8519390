"""The demo behind ``recfeat demo``: the whole built-in default, end to end, in a couple of minutes.

By default on the SYNTHETIC book-review sample that recfeat generates itself (no real data
is shipped), with the default ``minilm`` encoder (bf16 where the CPU has native bf16, else
fp32). ``--data PATH --format ...`` runs the same steps on a real dataset.

The demo is a list of steps (``DEMO_STEPS``), each a function of a ``DemoContext``; a later
stage (say, a downstream evaluation) is one more function appended to the list. It lives
outside the CLI so a notebook or script runs the same steps (``run_demo``) with its own
``echo``. ``demo_settings`` resolves the command's flags over the defaults and checks them,
``run_from_settings`` runs them (``recfeat.run_demo``); the command only parses flags.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from recfeat.config import parse_key_values
from recfeat.errors import RecfeatError, UsageError

DEFAULT_OUT = "recfeat-demo"


def cpu_has_bf16() -> bool:
    """True when the CPU has native bf16 (AMX or AVX-512-bf16); see ``recfeat.machine``."""
    from recfeat.machine import has_bf16

    return has_bf16()


def _echo(message: str) -> None:
    """The default ``echo``: a line on stdout (click, imported when first used)."""
    import click

    click.echo(message)


@dataclasses.dataclass
class DemoSettings:
    """What ``recfeat demo`` runs on: ``data`` (a path read as ``format`` with
    ``loader_options``, a RecData, or None: the SYNTHETIC sample), the folder ``out`` and the
    vector ``cache`` (None: the default folder, False: none, or a folder)."""

    data: Any = None
    format: str = "auto"
    loader_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    out: Path = Path(DEFAULT_OUT)
    cache: Any = None


def demo_settings(*, data: Any = None, format: str | None = None, loader_options: Any = None,
                  out: str | Path | None = None, cache: Any = None) -> DemoSettings:  # fmt: skip
    """Defaults < these arguments (None: not given), named as ``recfeat demo``'s flags;
    ``loader_options``: a dict or ``KEY=VALUE`` strings (``-o``), which, like ``format``,
    describe ``data`` and need it."""
    if data is None and ((format or "auto") not in ("auto", "sample", "synthetic-books")
                         or loader_options):  # fmt: skip
        raise UsageError("--format and --option describe --data; pass --data PATH with them")
    if isinstance(loader_options, dict):
        options = dict(loader_options)
    else:
        options = parse_key_values(loader_options or ())
    return DemoSettings(data=data, format=format or "auto", loader_options=options,
                        out=Path(out if out is not None else DEFAULT_OUT), cache=cache)  # fmt: skip


def run_from_settings(settings: DemoSettings, *, echo: Callable[[str], None] | None = None,
                      table: Callable[[Any], str] | None = None):
    """Run the demo as ``settings`` say: the output folder checked against the inputs
    first, the data read, the steps run (``run_demo``); a failed write is one RecfeatError
    line naming the folder."""
    from recfeat.outputs_guard import guard_outputs

    out, data = settings.out, settings.data
    given = {"--data": data, "--cache": settings.cache}
    guard_outputs({"--out": out}, {k: v for k, v in given.items() if isinstance(v, (str, Path))})
    if out.exists() and not out.is_dir():
        raise RecfeatError(f"--out {out} is a file; give a folder")
    if isinstance(data, (str, Path)):
        from recfeat.components.dataset import load_dataset

        data = load_dataset(data, format=settings.format, **settings.loader_options)
    try:
        return run_demo(data, out, cache=settings.cache, echo=echo or _echo, table=table)
    except OSError as exc:
        raise RecfeatError(f"cannot write to {out}: {exc.strerror or exc}") from None


@dataclasses.dataclass
class DemoContext:
    """What the steps share: the data, where outputs go, and what earlier steps produced."""

    data: Any  # recfeat.data.recdata.RecData
    out_dir: Path
    encoder: Any
    cache: Any = None
    echo: Callable[[str], None] = _echo
    # lays out an EvaluationResult for the echo (the CLI fits it to the terminal; core
    # cannot import the CLI's table module)
    table: Callable[[Any], str] | None = None
    outputs: dict[str, Path] = dataclasses.field(default_factory=dict)
    results: dict[str, Any] = dataclasses.field(default_factory=dict)
    timings: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def synthetic(self) -> bool:
        return bool(self.data.report.get("synthetic"))


def _features_step(ctx: DemoContext, level: str, file_name: str) -> None:
    from recfeat.extraction.pipeline import extract

    result = extract(ctx.data, level, ctx.encoder, cache=ctx.cache)
    path = result.save(ctx.out_dir / file_name)
    m = result.manifest
    ctx.results[f"{level}_features"] = result
    ctx.outputs[f"{level}_features"] = path
    how = f" (from {m['source']}" + (f", {m['aggregate']}" if m.get("aggregate") else "") + ")"
    ctx.echo(
        f"  {level} features{how}: {len(result.ids):,} vectors x {result.vectors.shape[1]} "
        f"-> {path}  [{result.run['encoded_texts']:,} encoded, {result.run['cached_texts']:,} cached, "
        f"{m['empty_texts']:,} empty, {m['truncated_texts']:,} truncated]"
    )


def step_review_features(ctx: DemoContext) -> None:
    """One vector per review."""
    if ctx.data.reviews is None or not len(ctx.data.reviews):
        ctx.echo("  review features: skipped (this dataset has no review texts)")
        return
    _features_step(ctx, "review", "review_features.parquet")


def step_item_features(ctx: DemoContext) -> None:
    """One vector per item: its own text, or the mean of its reviews."""
    _features_step(ctx, "item", "item_features.parquet")


DEMO_MODELS = (
    "global-mean",
    "bias",
    "popularity",
    "random",
    "mf",
    "als",
    "ridge",
    "content",
    "hybrid",
    "hybrid-als",
)
DEMO_METRICS = ("rmse", "ndcg@k", "recall@k", "hitrate@k", "coverage")


def _demo_features(ctx: DemoContext):
    """Leakage-safe text features for evaluation: item texts when the data has them, else
    the review-level vectors (the evaluation averages TRAINING reviews per split)."""
    from recfeat.data.features import load_features

    if ctx.data.items is not None and len(ctx.data.items) and "item_features" in ctx.outputs:
        return load_features(ctx.outputs["item_features"]), "item texts"
    if "review_features" in ctx.outputs:
        return load_features(ctx.outputs["review_features"]), "training reviews, per split"
    return None, "none"


MIN_DEMO_ITEMS = 50  # below this a top-10 over a 20% hold-out measures nothing


def _evaluate_step(ctx: DemoContext, split: str, file_stem: str) -> None:
    from recfeat.evaluation.protocol import evaluate, plot_result

    n_items = ctx.data.interactions["item"].nunique()
    if n_items < MIN_DEMO_ITEMS:
        ctx.echo(
            f"  skipped: {n_items} items is too few for a top-10 evaluation "
            f"(the demo needs {MIN_DEMO_ITEMS}); use `recfeat evaluate` with a smaller --k"
        )
        return

    features, source = _demo_features(ctx)
    result = evaluate(
        ctx.data, features, models=DEMO_MODELS, split=split, k=10, seed=0, metrics=DEMO_METRICS
    )
    from recfeat.atomic import write_text

    json_path = ctx.out_dir / f"{file_stem}.json"
    write_text(json_path, result.to_json() + "\n")
    label = "SYNTHETIC " if ctx.synthetic and "SYNTHETIC" not in ctx.data.name else ""
    png = plot_result(
        result, ctx.out_dir / f"{file_stem}.png", title=f"{label}{ctx.data.name}: {split} split"
    )
    ctx.results[file_stem] = result
    ctx.outputs[file_stem] = json_path
    ctx.echo(f"  text features: {source}; K=10, full ranking, seed 0")
    for line in (ctx.table or _compact_table)(result).splitlines():
        ctx.echo("    " + line)
    ctx.echo(f"  -> {json_path}, {png}")


def _compact_table(result) -> str:
    """The result table with short n/a labels (the JSON keeps the full reasons)."""
    return result.display_table(digits=3, short=True).to_string() + "\nn/a: " + result.na_legend()


def step_evaluate_warm(ctx: DemoContext) -> None:
    """Every demo model on one random 80/20 split: ratings and top-10 ranking."""
    _evaluate_step(ctx, "random", "evaluation_random")


def step_evaluate_cold(ctx: DemoContext) -> None:
    """Item cold-start: 20% of items held out; only text-using models can rank them."""
    _evaluate_step(ctx, "item-cold", "evaluation_item_cold")


DEMO_STEPS: list[tuple[str, Callable[[DemoContext], None]]] = [
    ("review-level features", step_review_features),
    ("item-level features", step_item_features),
    ("downstream evaluation, random 80/20 split", step_evaluate_warm),
    ("downstream evaluation, item cold-start (20% of items unseen)", step_evaluate_cold),
]


def run_demo(
    data=None,
    out_dir: str | Path = DEFAULT_OUT,
    *,
    encoder=None,
    cache: Any = None,
    steps: list[tuple[str, Callable[[DemoContext], None]]] | None = None,
    echo: Callable[[str], None] = _echo,
    table: Callable[[Any], str] | None = None,
) -> DemoContext:
    """Run the demo steps on ``data`` (default: the SYNTHETIC book sample) into ``out_dir``.

    ``encoder`` defaults to ``minilm`` in bf16 where the CPU supports it, else fp32."""
    from recfeat.extraction.stages import default_encoder

    started = time.perf_counter()
    if data is None:
        from recfeat.components.dataset import load_dataset

        data = load_dataset(None, format="synthetic-books")
    if encoder is None:
        encoder = default_encoder(precision="bf16" if cpu_has_bf16() else "fp32")
    ctx = DemoContext(data=data, out_dir=Path(out_dir), encoder=encoder, cache=cache, echo=echo,
                      table=table)
    summary = data.summary()
    if ctx.synthetic:
        echo("Data: SYNTHETIC book reviews generated by recfeat (not real data): ")
    else:
        echo("Data: ")
    echo(
        f"  {data.name}: {summary['interactions']:,} interactions, {summary['users']:,} users, "
        f"{summary['items']:,} items, {summary['reviews'] or 0:,} reviews, "
        f"{summary['item_texts'] or 0:,} item texts"
    )
    fp = encoder.fingerprint()
    echo(
        f"Encoder: {fp.get('encoder')} ({fp.get('backend')}, {fp.get('precision')}, "
        f"{fp.get('pooling')} pooling, max_length {fp.get('max_length')})"
    )
    for n, (title, step) in enumerate(steps or DEMO_STEPS, start=1):
        echo(f"Step {n}: {title}")
        t0 = time.perf_counter()
        step(ctx)
        ctx.timings[title] = time.perf_counter() - t0
    total = time.perf_counter() - started
    ctx.timings["total"] = total
    label = " on SYNTHETIC data" if ctx.synthetic else ""
    echo(f"Done{label} in {total:.1f} s; outputs in {ctx.out_dir}/")
    return ctx
