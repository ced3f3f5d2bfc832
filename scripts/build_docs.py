"""Build the documentation site: pages generated from the code, then `mkdocs build --strict`.

    .venv/bin/python scripts/build_docs.py [--site DIR] [--no-build]

Generated (never edited by hand, not committed: see .gitignore): the CLI reference from the click commands,
the config reference from the config's models and their field descriptions, the Python reference from the
public API's docstrings, a page per task type (its module's docstring and its `labelmill init` template)
and a page per strategy (its package docstring and public names). Written pages (install, Autolabel,
architecture, ...) are `docs/*.md`; README's "Label your own CSV" is the quickstart. With --strict, a
warning (a broken link, a page missing from the navigation) fails the build.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
GENERATED = ("reference", "tasks", "strategies")


def _doc(obj: Any) -> str:
    return inspect.cleandoc(obj.__doc__ or "").strip()


def cli_page() -> str:
    import click

    from labelmill.cli import cli
    from labelmill.cli.app import _add_strategy_commands

    _add_strategy_commands()
    ctx = click.Context(cli, info_name="labelmill")
    out = ["# CLI reference", "", "Every command and option, as `labelmill COMMAND --help` prints them.", ""]

    def walk(cmd: click.Command, path: list[str]):
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                yield from walk(cmd.get_command(ctx, name), [*path, name])
        else:
            yield path, cmd

    for path, cmd in walk(cli, []):
        name = " ".join(path)
        out += [f"## labelmill {name}", "", "```text", f"labelmill {name} {' '.join(p.human_readable_name for p in cmd.params if isinstance(p, click.Argument))}".rstrip(), "```", ""]
        out += [inspect.cleandoc(cmd.help or ""), ""]
        options = [p for p in cmd.params if isinstance(p, click.Option)]
        if options:
            out += ["| option | default | what it does |", "|---|---|---|"]
            for p in options:
                default = "" if p.default is None or p.is_flag or callable(p.default) else f"`{p.default}`"
                out.append(f"| `{', '.join(p.opts)}` | {default} | {_cell(p.help or '')} |")
            out.append("")
    return "\n".join(out)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def config_page() -> str:
    from pydantic import BaseModel

    from labelmill.config import Config
    from labelmill.registry import all_sections

    out = ["# Config reference", "", "Every key of a config file (YAML or JSON), section by section, with its default.", ""]

    top = _fields("top level", Config)
    owned = [f"| `{name}` | section | | see `{name}:` below ({section.owner}) |" for name, section in sorted(all_sections().items())]
    out += [*top[:-1], *owned, ""]
    for name, field in Config.model_fields.items():
        kind = field.annotation
        if inspect.isclass(kind) and issubclass(kind, BaseModel):
            out += _fields(f"`{name}:`", kind)
    for name, section in sorted(all_sections().items()):  # each task's and strategy's own section
        out += _fields(f"`{name}:` ({section.owner})", section.model)
    return "\n".join(out)


def _fields(title: str, model: Any) -> list[str]:
    from pydantic import BaseModel

    rows = [f"## {title}", "", _doc(model), "", "| key | type | default | what it does |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        if name == "base_dir":
            continue
        kind = field.annotation
        if inspect.isclass(kind) and issubclass(kind, BaseModel):
            rows.append(f"| `{name}` | section | | see `{name}:` below |")
            continue
        default = "" if field.is_required() else f"`{field.get_default(call_default_factory=True)!r}`"
        type_name = re.sub(r"labelmill\.\w+\.", "", str(getattr(kind, "__name__", kind)).replace("typing.", ""))
        rows.append(f"| `{name}` | {_cell(type_name)} | {_cell(default)} | {_cell(field.description or '')} |")
    return [*rows, ""]


def python_page() -> str:
    import labelmill

    out = ["# Python reference", "", "`import labelmill`: the public API (loaded on first use, so importing is cheap).", ""]
    for name in labelmill.__all__:
        obj = getattr(labelmill, name)
        if inspect.isfunction(obj):
            out += [f"## labelmill.{name}", "", "```python", f"labelmill.{name}{inspect.signature(obj)}", "```", "", _doc(obj), ""]
    out += ["## Strategies", "", "Each strategy's package publishes its entry points (see the strategy pages):", ""]
    from labelmill.core.strategy import strategies

    for name in strategies.names():
        package = importlib.import_module(f"labelmill.strategies.{name}")
        names = ", ".join(f"`{n}`" for n in getattr(package, "__all__", []))
        out.append(f"- `labelmill.strategies.{name}`: {names}")
    return "\n".join([*out, ""])


def task_pages() -> dict[str, str]:
    from labelmill.api import init_config
    from labelmill.registry import tasks

    pages = {}
    for name in tasks.names():
        cls = tasks.get(name)
        module = importlib.import_module(cls.__module__)
        parts = [f"# Task: {name}", "", _doc(module), "", _doc(cls), "", "## A starting config", "",
                 f"`labelmill init {name} -o config.yaml` writes:", "", "```yaml", init_config(name).rstrip(), "```", ""]
        pages[name] = "\n".join(parts)
    return pages


def strategy_pages() -> dict[str, str]:
    from labelmill.core.strategy import strategies

    pages = {}
    for name in strategies.names():
        package = importlib.import_module(f"labelmill.strategies.{name}")
        parts = [f"# Strategy: {name}", "", _doc(package), ""]
        for public in getattr(package, "__all__", []):
            obj = getattr(package, public)
            if inspect.isfunction(obj) or inspect.isclass(obj):
                head = f"{public}{inspect.signature(obj)}" if inspect.isfunction(obj) else f"class {public}"
                parts += [f"## {public}", "", "```python", head, "```", "", _doc(obj), ""]
        pages[name] = "\n".join(parts)
    return pages


def quickstart_page() -> str:
    """README's "Label your own CSV" section, and its two commands."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Label your own CSV\n(.*?)(?=^## )", readme, re.S | re.M)
    if section is None:
        raise SystemExit("README.md has no '## Label your own CSV' section")
    return "# Label your own CSV\n" + section.group(1)


def write_pages() -> list[str]:
    """Write the generated pages; their paths relative to docs/."""
    pages = {"reference/cli.md": cli_page(), "reference/config.md": config_page(), "reference/python.md": python_page(),
             "quickstart.md": quickstart_page()}
    pages.update({f"tasks/{k}.md": v for k, v in task_pages().items()})
    pages.update({f"strategies/{k}.md": v for k, v in strategy_pages().items()})
    for rel, text in pages.items():
        path = DOCS / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.rstrip() + "\n", encoding="utf-8")
    return sorted(pages)


def write_config(pages: list[str]) -> Path:
    """mkdocs.yml with the navigation: written pages first, then the generated ones."""
    import yaml

    tasks = [{p.split("/")[1][:-3]: p} for p in pages if p.startswith("tasks/")]
    strategies = [{p.split("/")[1][:-3]: p} for p in pages if p.startswith("strategies/")]
    nav = [
        {"Home": "index.md"}, {"Label your own CSV": "quickstart.md"}, {"Install": "install.md"}, {"Every command": "commands.md"},
        {"Tasks": tasks}, {"Strategies": strategies},
        {"Reference": [{"CLI": "reference/cli.md"}, {"Config": "reference/config.md"}, {"Python": "reference/python.md"}]},
        {"Autolabel configs": "autolabel.md"}, {"Architecture": "architecture.md"}, {"Ray": "ray.md"}, {"Mutation testing": "mutation.md"},
    ]
    config = {"site_name": "labelmill", "docs_dir": "docs", "theme": {"name": "material"}, "nav": nav, "strict": True,
              "markdown_extensions": ["tables", "admonition", {"toc": {"permalink": True}}],
              "validation": {"nav": {"omitted_files": "warn", "not_found": "warn"}, "links": {"not_found": "warn", "unrecognized_links": "warn"}}}
    path = ROOT / "mkdocs.yml"
    path.write_text("# Written by scripts/build_docs.py (the navigation follows the code); edit that script, not this file.\n"
                    + yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--site", default=str(ROOT / "site"), help="Where the HTML goes.")
    parser.add_argument("--no-build", action="store_true", help="Only write the generated pages and mkdocs.yml.")
    args = parser.parse_args()
    config = write_config(write_pages())
    if args.no_build:
        return
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", args.site], cwd=ROOT, env=env)
    sys.exit(done.returncode)


if __name__ == "__main__":
    main()
