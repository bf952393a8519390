"""``recfeat config validate``: check a pipeline TOML file and report every problem."""

from __future__ import annotations

import click


@click.group("config")
def config_group() -> None:
    """Work with pipeline and experiment configuration files (TOML)."""


@config_group.command("validate")
@click.argument("path", type=click.Path(dir_okay=True))
def validate_command(path: str) -> None:
    """Check PATH: unreadable file, malformed TOML, unknown sections, settings or
    components, missing `use`, bad option names, values and types; every problem on its
    own line.

    \b
    Who reads what (a section or setting no command reads is rejected):
      dataset          extract, evaluate, serve (format and loader options)
      cleaners         extract, clean, serve
      tokenizer        tokenize
      token_features   extract
      encoder          extract, export, serve (export: the torch encoder to export)
      models, metrics  evaluate ([models.NAME] tables or [[models]]; a model's
                       options are fixed, [models.NAME.search] lists values to tune)
      peers            evaluate (a top-level list: implicit, lightfm, cornac)
      exporter         export
      [pipeline]       level (extract); split, k, seed, test_fraction,
                       relevance_threshold, cold_reviews, cold_protocol, candidates,
                       rank_rating_models, merge_variants, trust_features (evaluate)
      [data]           path, features, user_features, extract_features, load_split
                       (evaluate; ${VAR} and ~ are expanded in paths)
      [tuning]         tune, trials, objective (evaluate)
      [outputs]        dir, json, markdown, plot, save_split (evaluate)

    Precedence: command-line flag > config file > built-in default. A flag naming another
    component than the file (say --encoder other) drops the file's options for it.

    Exit code 0 when valid, 2 when PATH has problems (usage errors, like any command
    given a bad config).
    """
    import recfeat.api as api
    from recfeat.cli.terminal import clean
    from recfeat.errors import ConfigError

    problems = api.validate_config(path)
    if problems:
        for line in problems:
            click.echo(clean(line), err=True)  # lines quote keys and values from the file
        plural = "s" if len(problems) > 1 else ""
        raise ConfigError(f"{path}: {len(problems)} problem{plural} (listed above)")
    click.echo(clean(f"{path}: OK"))


def register(cli: click.Group) -> None:
    cli.add_command(config_group)
