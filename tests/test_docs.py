"""The documentation site (issue 39): built from docs/ and the code with `mkdocs build --strict` (a broken
link or a page left out of the navigation fails it); the generated references cover every command, task
type and strategy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_site_builds_strictly_and_its_references_cover_the_code(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_docs.py"), "--site", str(tmp_path / "site")],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    from labelmill.core.strategy import strategies
    from labelmill.registry import tasks

    site = tmp_path / "site"
    assert all((site / "tasks" / name / "index.html").is_file() for name in tasks.names())
    assert all((site / "strategies" / name / "index.html").is_file() for name in strategies.names())
    cli = (ROOT / "docs" / "reference" / "cli.md").read_text()
    for command in ("run", "plan", "eval", "calibrate", "review", "tune", "refine", "weak label", "synth examples", "freeal"):
        assert f"## labelmill {command}\n" in cli
    assert "--tiers-seed" in cli and "`mention_columns`" in (ROOT / "docs" / "reference" / "config.md").read_text()
    assert "labelmill init classification" in (site / "quickstart" / "index.html").read_text()  # README's section, the quickstart
