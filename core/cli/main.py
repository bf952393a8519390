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
    "recfeat.cli.explain_cmd",
    "recfeat.cli.serve_cmd",
    "recfeat.cli.adapt_cmd",
    "recfeat.cli.finetune_cmd",
    "recfeat.cli.distill_cmd",
)


class CommandError(click.ClickException):
    """A RecfeatError shown as one 'Error: ...' line with its own exit code. The message is
    cleaned for the terminal: it may quote ids, keys or file names from the data."""

    def __init__(self, message: str, exit_code: int = 1):
        from recfeat.cli.terminal import clean

        super().__init__(clean(message, newlines=True))
        self.exit_code = exit_code


def _debug_enabled(ctx: click.Context | None) -> bool:
    if os.environ.get("RECFEAT_DEBUG") == "1":
        return True
    root = ctx.find_root() if ctx else None
    return bool(root and root.obj and root.obj.get("debug"))


def _shown_name(filename) -> str:
    """The user's file name for an OSError: atomic writes fail on a recfeat temporary."""
    import recfeat.api as api

    if filename is None:
        return "the output"
    name = os.fsdecode(filename) if isinstance(filename, (bytes, os.PathLike)) else str(filename)
    head, _, base = name.rpartition(os.sep)
    base = api.final_name(base)
    return f"{head}{os.sep}{base}" if head else base


def os_error_message(exc: OSError) -> str:
    """One line naming the problem and the fix for the OSErrors a user can cause."""
    import errno

    name = _shown_name(exc.filename)
    code = exc.errno
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return f"disk full writing {name}; free space or choose another --out"
    if code in (errno.EACCES, errno.EPERM):
        return f"permission denied: {name}; choose a file and folder you may read and write"
    if code == errno.EROFS:
        return f"{name} is on a read-only file system; choose another --out"
    if code == errno.EISDIR:
        return f"{name} is a folder; give a file path"
    if code == errno.ENOTDIR:
        return f"{name}: part of the path is a file, not a folder; check the path"
    if code == errno.ENOENT:
        return f"{name} does not exist; check the path"
    if code == errno.EMFILE:
        return "too many open files; close other programs or raise the limit (ulimit -n)"
    if code == errno.ENAMETOOLONG:
        return f"file name too long: {name}; choose a shorter path"
    return f"{exc.strerror or exc} ({name}); check the path, permissions and free space"


def _quiet_broken_pipe() -> None:
    """Output piped into e.g. `head` that stopped reading: stop quietly (Python's docs:
    point stdout at devnull so the interpreter's final flush cannot fail again)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real stdout (tests): nothing to do
        pass


class RecfeatGroup(click.Group):
    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.ClickException as exc:
            _clean_click_message(exc)
            raise

    def invoke(self, ctx: click.Context):
        try:
            result = super().invoke(ctx)
            sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
            return result
        except BrokenPipeError:
            _quiet_broken_pipe()
            raise click.exceptions.Exit(1) from None
        except click.ClickException as exc:
            _clean_click_message(exc)
            raise
        except (click.exceptions.Exit, click.Abort):
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
        except OSError as exc:  # disk full, permission denied, a folder where a file goes...
            if _debug_enabled(ctx):
                raise
            raise CommandError(os_error_message(exc)) from None
        except Exception as exc:  # a bug: every input problem raises a RecfeatError
            if _debug_enabled(ctx):
                raise
            raise CommandError(
                f"internal error {type(exc).__name__}: {exc}; this is a bug in recfeat or a "
                "plugin: rerun with --debug and report the traceback"
            ) from None


def _clean_click_message(exc: click.ClickException) -> None:
    """Click quotes the user's arguments in its messages: clean them for the terminal."""
    from recfeat.cli.terminal import clean

    exc.message = clean(exc.message, newlines=True)


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
    import recfeat.api as api

    group = group or cli

    def fail(plugin_name: str, message: str) -> None:
        api.record_plugin_failure(plugin_name, f"register_commands: {message}")
        print(f"recfeat: plugin {plugin_name!r} failed to add commands: {message}", file=sys.stderr)

    for impl in api.command_hooks():
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
