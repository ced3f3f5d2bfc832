"""The command line: a thin layer over the Python API, one small module per command group."""

from labelmill.cli.commands import cli, main

__all__ = ["cli", "main"]
