"""The `labelmill` command group and its entry point: errors are one line; --debug shows the traceback.

Each command lives in its own module of this package and registers itself on `cli`; strategies (plugins
too) add theirs through `Strategy.command()`.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from labelmill.errors import LabelmillError
from labelmill.types import finite  # noqa: F401  (commands import it from here)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="labelmill", prog_name="labelmill", message="%(prog)s %(version)s")
@click.option("--debug", is_flag=True, help="Show full tracebacks.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """labelmill: label text datasets with LLMs, and know which labels to trust."""
    from labelmill.cli.progress import ProgressView
    from labelmill.core.strategy import CommandContext

    ctx.obj = CommandContext(progress=lambda quiet: ProgressView(quiet=quiet))


def cost_text(cost: float | None) -> str:
    """What a plan's estimated cost means, in words."""
    if cost == 0:
        return "free (local model)"
    if cost is None:
        return "unknown: the model is not in the price table (set model.price)"
    return f"${cost:.4f} at most (prompts plus max_tokens per answer)"


def command_config(config: str, on_event: Any, *, encoding: str | None = None, model: str | None = None) -> Any:
    """A command's config: loaded (conversion notices sent to `on_event`), with `--encoding` and `--model`
    laid over it when given (`--model`: a catalog name, a .gguf path, or BACKEND:NAME)."""
    from labelmill.config import derive_config, load_with_notices, model_from_text

    cfg = load_with_notices(config, on_event)
    if encoding:
        cfg.dataset.encoding = encoding
    return derive_config(cfg, model=model_from_text(model)) if model else cfg


def _add_strategy_commands() -> None:
    """Commands that strategies contribute (plugins through the labelmill.strategies entry points)."""
    from labelmill.core.strategy import get_strategy, strategies

    for name in strategies.names():
        try:
            command = get_strategy(name).command()
        except (ImportError, AttributeError, LabelmillError) as exc:  # a broken plugin must not take the CLI down
            click.echo(f"note: strategy {name!r} could not be loaded ({type(exc).__name__}: {exc}); its command is missing", err=True)
            continue
        for one in command if isinstance(command, (list, tuple)) else [command]:
            if isinstance(one, str):  # 'package.module:attribute', imported now (the strategy's module imports no CLI)
                try:
                    module_name, _, attribute = one.partition(":")
                    one = getattr(importlib.import_module(module_name), attribute)
                except (ImportError, AttributeError) as exc:
                    click.echo(f"note: strategy {name!r} names command {one!r}, which could not be loaded ({type(exc).__name__}: {exc})", err=True)
                    continue
            if one is not None and one.name not in cli.commands:
                cli.add_command(one)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    _add_strategy_commands()
    debug = "--debug" in argv
    try:
        cli.main(args=argv, prog_name="labelmill", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("interrupted; rerun the same command to resume", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted; everything labeled so far is saved; rerun the same command to resume", err=True)
        sys.exit(130)
    except LabelmillError as exc:
        if debug:
            raise
        click.echo(f"error: {exc.one_line()}", err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:  # the last line of defence: one line, not a traceback
        if debug:
            raise
        click.echo(f"error: unexpected {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
