"""bench/README (issue 34): no figure without a command. Every line that carries a number belongs to a
section whose heading (or, before the first section, whose text) names the kept command that prints it,
and every command named is a script in bench/."""

from __future__ import annotations

import re
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"
COMMAND = re.compile(r"python bench/([a-z_]+\.py)")
NUMBER = re.compile(r"(?<![\w/.-])\d+(?:[.,]\d+)*(?![\w/-])")


def figure_lines() -> list[tuple[int, str, str | None]]:
    """(line number, line, the command of its section) for every line of bench/README.md with a number.
    A `## ` heading that names a command opens its section; headings inside a section that name none
    (a guideline quoted in it) stay in it."""
    out, command = [], None
    for number, line in enumerate((BENCH / "README.md").read_text(encoding="utf-8").splitlines(), start=1):
        named = COMMAND.search(line)
        if line.startswith("## ") and named:
            command = named.group(1)
        elif command is None and named:  # the introduction names its own commands in its text
            command = named.group(1)
        if NUMBER.search(COMMAND.sub("", line)):
            out.append((number, line, command))
    return out


def test_every_figure_in_bench_readme_has_a_kept_command():
    lines = figure_lines()
    assert len(lines) > 300  # the file is read, and it is full of figures
    orphans = [f"{n}: {line[:80]}" for n, line, command in lines if command is None]
    assert orphans == []
    named = {command for _, _, command in lines} | set(COMMAND.findall((BENCH / "README.md").read_text(encoding="utf-8")))
    missing = sorted(c for c in named if not (BENCH / c).is_file())
    assert missing == []


def test_the_figure_check_sees_a_figure_without_a_command(tmp_path, monkeypatch):
    (tmp_path / "README.md").write_text("# Benchmarks\n\naccuracy 0.91 on 1,000 rows\n\n## Speed: `python bench/speed.py`\n\n12.5 rows/s\n")
    (tmp_path / "speed.py").write_text("")
    monkeypatch.setattr(__import__(__name__), "BENCH", tmp_path)
    lines = figure_lines()
    assert [(n, c) for n, _, c in lines] == [(3, None), (7, "speed.py")]
