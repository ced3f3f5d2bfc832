"""The command line: a thin layer over the Python API, one small module per command.

`app` holds the group and the entry point; importing this package registers every built-in command.
"""

from labelmill.cli import calibrate, doctor, eval, export, init, models, plan, run  # noqa: F401  (each registers its command; strategies add theirs)
from labelmill.cli.app import cli, main

__all__ = ["cli", "main"]
