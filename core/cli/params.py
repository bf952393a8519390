"""Click parameter types for numbers with a meaning: checked when the command line is read,
so an impossible value is a usage error (exit 2) before any work, never a NaN that travels."""

from __future__ import annotations

import math

import click

import recfeat.api as api


class OpenFraction(click.ParamType):
    """A finite number strictly between 0 and 1 (a share held out, a probability)."""

    name = "fraction"

    def convert(self, value, param, ctx):
        if isinstance(value, float) and 0 < value < 1:
            return value
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number; give a fraction such as 0.2", param, ctx)
        if not math.isfinite(number) or not 0 < number < 1:
            self.fail(f"{value} is not between 0 and 1 (exclusive); give e.g. 0.2", param, ctx)
        return number


#: The downstream gate's default sample (``api.GATE_INTERACTIONS_DEFAULT``: the gate's own,
#: kept equal by a test; light, so ``--help`` stays instant).
GATE_INTERACTIONS_DEFAULT = api.GATE_INTERACTIONS_DEFAULT


def gate_interactions_option(flag: str):
    """``--gate-interactions N``, one spelling for ``bench throughput``, ``extract --backend
    auto`` and ``export --gate``: the size of the gate's seeded sample (None: the default)."""
    return click.option(
        "--gate-interactions", type=int, default=None,
        help=f"{flag}: interactions in the downstream gate's seeded sample; more narrows the "
             f"confidence interval of each metric's drop [default: {GATE_INTERACTIONS_DEFAULT:,}].",
    )  # fmt: skip


def training_split_options(what: str, load_help: str, default_split: str = "random"):
    """``--split``, ``--seed``, ``--test-fraction`` and ``--load-split``: the split whose
    TRAINING part ``what`` reads, made as ``evaluate`` makes it; one spelling for
    ``finetune`` and ``adapt`` (their library functions check the values)."""
    options = (
        click.option("--split", "split_kind", type=click.Choice(api.SPLITS), default=None,
                     help=f"Split whose TRAINING part {what}, as evaluate makes it [default: {default_split}]."),
        click.option("--seed", type=click.IntRange(min=0), default=None,
                     help="Seed of the split, the training sample and training [default: 0]."),
        click.option("--test-fraction", type=OpenFraction(), default=None,
                     help="Share held out by the split [default: 0.2]."),
        click.option("--load-split", default=None, help=load_help),
    )  # fmt: skip

    def decorate(fn):
        for option in reversed(options):  # listed in --help in the order above
            fn = option(fn)
        return fn

    return decorate
