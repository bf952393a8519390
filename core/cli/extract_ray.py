"""``recfeat extract --ray DATA --out DIR/``: the flags of ``extract`` mapped onto the Ray
Data engine (``recfeat.extraction.ray_data``)."""

from __future__ import annotations

from typing import Any

import click

# Flags the Ray engine does not take, and why (each is one clear line, never ignored).
_NOT_WITH_RAY = {
    "train_path": ("--train", "user/item profiles from a training split need the local engine"),
    "token_features": ("--token-features", "sparse token features need the local engine"),
    "cache_dir": ("--cache", "--ray resumes from the shards in --out DIR/, not the vector cache"),
    "onnx_dir": ("--onnx", "give the export folder as --encoder DIR"),
}


def run_ray(params: dict[str, Any], *, encoder_spec) -> None:
    """``params``: the ``extract`` command's; ``encoder_spec``: its flags-over-config encoder
    resolution (passed in, so this module does not import the command's)."""
    from recfeat.cli.terminal import clean
    from recfeat.errors import UsageError
    from recfeat.extraction.inputs import ExtractRun
    from recfeat.extraction.ray_data import RayOptions, extract_ray, parse_actors
    from recfeat.plugin.registry import get_registry

    for key, (flag, why) in _NOT_WITH_RAY.items():
        if params.get(key):
            raise UsageError(f"{flag} does not combine with --ray: {why}")
    if params.get("backend") == "auto":
        raise UsageError("--backend auto does not combine with --ray; name the backend")
    if params.get("stream"):
        raise UsageError("--stream is the local engine's; --ray always streams (drop one)")
    if params.get("data") in (None, "sample"):
        raise UsageError("--ray reads a file or folder of reviews (or a URI); give DATA")
    config: dict[str, Any] = {}
    if params.get("config_path"):
        from recfeat.config import load_config

        config = load_config(params["config_path"])
    cli_options = {k: params[k] for k in ("pooling", "precision", "batch_tokens", "max_length")
                   if params.get(k) is not None}  # fmt: skip
    gpus = float(params.get("gpus_per_actor") or 0)
    if gpus > 0:
        cli_options.setdefault("device", "cuda")  # an actor that reserves a GPU uses it
    name, enc_options = encoder_spec(config, params.get("encoder_name"), params.get("backend"),
                                      None, cli_options)  # fmt: skip
    run = ExtractRun(
        data=params["data"], fmt=params.get("fmt"), config=config,
        loader_options=params.get("options") or (), encoding=params.get("encoding"),
        skip_bad_rows=params.get("skip_bad_rows"), cleaners=params.get("cleaners"),
        token_features=None,
    )  # fmt: skip
    level = run.level(params.get("level"))
    encoder = get_registry("encoder").create(name, **enc_options)  # validated, not loaded
    path, fmt, loader_options = run.source()
    options = RayOptions(
        address=params.get("ray_address"), actors=parse_actors(params.get("actors")),
        cpus_per_actor=float(params.get("cpus_per_actor") or 1.0), gpus_per_actor=gpus,
        batch_rows=int(params.get("batch_rows") or 1024),
    )  # fmt: skip
    out = params["out"]
    manifest = extract_ray(
        str(path), out, encoder=encoder, cleaner=run.cleaner(), level=level, fmt=fmt,
        aggregate=params.get("aggregate"), user_from=params.get("user_from") or "auto",
        loader_options=loader_options, options=options,
    )  # fmt: skip
    click.echo(clean(
        f"wrote {manifest['rows']:,} {level} vectors (dim {manifest['dim']}) in "
        f"{manifest['shards']:,} shards to {out.rstrip('/')}/ (manifest.json)"
    ))  # fmt: skip
