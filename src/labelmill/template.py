"""Rendering a row through the config's input_template."""

from __future__ import annotations

import math
import string
from typing import Any, Mapping


def template_fields(template: str) -> list[str]:
    return list(dict.fromkeys(name for _, name, _, _ in string.Formatter().parse(template) if name))


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def render_row(template: str, row: Mapping[str, Any]) -> str:
    return template.format_map({name: _cell(row.get(name)) for name in template_fields(template)}).strip()
