"""Rendering a row through the config's input_template.

'{title}' shows a column; '{left_json[title]}' shows one key of a column that holds a JSON object
(or a dict), so records stored as JSON can be rendered from chosen fields.
"""

from __future__ import annotations

import json
import math
import string
from collections.abc import Mapping
from typing import Any


def _base(field: str) -> str:
    return field.split("[", 1)[0].split(".", 1)[0]


def template_fields(template: str) -> list[str]:
    """The input columns a template uses."""
    return list(dict.fromkeys(_base(name) for _, name, _, _ in string.Formatter().parse(template) if name))


class _Record(dict):
    """A JSON object cell: a missing key renders as empty text."""

    def __missing__(self, key: str) -> str:
        return ""

    def __getitem__(self, key: str) -> Any:
        value = super().__getitem__(key) if key in self else ""
        return _cell(value)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _record(value: Any) -> _Record:
    if isinstance(value, dict):
        return _Record(value)
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            data = json.loads(value)
        except ValueError:
            data = None
        if isinstance(data, dict):
            return _Record(data)
    return _Record()


def render_row(template: str, row: Mapping[str, Any]) -> str:
    indexed = {_base(name) for _, name, _, _ in string.Formatter().parse(template) if name and "[" in name}
    values = {name: (_record(row.get(name)) if name in indexed else _cell(row.get(name))) for name in template_fields(template)}
    return template.format_map(values).strip()
