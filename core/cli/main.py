"""Root command group: global flags, error handling, and command registration."""

from __future__ import annotations

import importlib
import os
import sys

import click

from recfeat import __version__
from recfeat.errors import RecfeatError

# Built-in command modules; each exposes ``register(cli)``. Kept as names so importing
# this module stays cheap: command modules import heavy libraries inside functions only.
BUILTIN_COMMAND_MODULES = (
    "recfeat.cli.plugins_cmd",
    "recfeat.cli.components_cmd",
    "recfeat.cli.config_cmd",
    "recfeat.cli.text_cmd",
    "recfeat.cli.extract_cmd",
    "recfeat.cli.demo_cmd",
    "recfeat.cli.evaluate_cmd",
    "recfeat.cli.export_cmd",
    "recfeat.cli.bench_cmd",
    "recfeat.cli.data_cmd",
    "recfeat.cli.model_cmd",
)


class CommandError(click.ClickException):
    """A RecfeatError shown as one 'Error: ...' line with its own exit code."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def _debug_enabled(ctx: click.Context | None) -> bool:
    if os.environ.get("RECFEAT_DEBUG") == "1":
        return True
    root = ctx.find_root() if ctx else None
    return bool(root and root.obj and root.obj.get("debug"))


class RecfeatGroup(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except RecfeatError as exc:
            if _debug_enabled(ctx):
                raise
            raise CommandError(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            raise click.Abort() from None
        except MemoryError:
            if _debug_enabled(ctx):
                raise
            raise CommandError(
                "out of memory; lower --batch-tokens or the batch size, or process the input in parts"
            ) from None
        except Exception as exc:  # last resort: one line, never a traceback without --debug
            if _debug_enabled(ctx):
                raise
            raise CommandError(
                f"unexpected {type(exc).__name__}: {exc} (rerun with --debug for the traceback; "
                "please report it)"
            ) from None


@click.group(cls=RecfeatGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="recfeat")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """recfeat: text -> language-model features -> recommendation models, measured.

    Start with `recfeat demo`; list what is installed with `recfeat components`.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _register_builtin_commands() -> None:
    for modname in BUILTIN_COMMAND_MODULES:
        importlib.import_module(modname).register(cli)


def _register_plugin_commands(group: click.Group | None = None) -> None:
    """Let third-party plugins add commands. Only they are loaded here (built-in commands
    come from BUILTIN_COMMAND_MODULES), so start-up never imports the built-in component
    modules. A plugin whose ``register_commands`` raises, or that would replace an existing
    command, is recorded (``recfeat plugins`` shows it) and the other commands still work."""
    from recfeat.plugin.manager import ordered_hookimpls, record_failure

    group = group or cli

    def fail(plugin_name: str, message: str) -> None:
        record_failure(plugin_name, f"register_commands: {message}")
        print(f"recfeat: plugin {plugin_name!r} failed to add commands: {message}", file=sys.stderr)

    for impl in ordered_hookimpls("register_commands", builtins=False):
        before = dict(group.commands)
        try:
            impl.function(**{arg: group for arg in impl.argnames})
        except Exception as exc:
            group.commands.clear()
            group.commands.update(before)  # nothing half-added
            fail(impl.plugin_name, f"{type(exc).__name__}: {exc}")
            continue
        clashes = sorted(n for n, cmd in before.items() if group.commands.get(n) is not cmd)
        if clashes:
            group.commands.clear()
            group.commands.update(before)
            fail(
                impl.plugin_name,
                f"command {clashes[0]!r} already exists; a plugin may add commands but not "
                "replace them (rename it)",
            )


_register_builtin_commands()
_register_plugin_commands()
