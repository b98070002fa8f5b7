"""Text a database can store."""

from __future__ import annotations

import re
from typing import Any

# Characters JSON can carry (as \u escapes) and a URL (as %00) that no text
# column stores: NUL (PostgreSQL refuses it) and halves of a surrogate pair
# without the other half (not encodable as UTF-8). A whole pair decodes to one
# character outside this range.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(value: Any) -> bool:
    """No unstorable character in any string of ``value`` (parsed JSON: dict
    keys included)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if UNSTORABLE.search(item):
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


# A spreadsheet program runs a cell that begins with one of these as a
# formula (CSV injection): such a cell is exported with a leading quote.
FORMULA_STARTS = frozenset({"=", "+", "-", "@", "\t", "\r"})


def csv_cell(value: str) -> str:
    """``value`` as a CSV cell that no spreadsheet program runs."""
    return "'" + value if value[:1] in FORMULA_STARTS else value
