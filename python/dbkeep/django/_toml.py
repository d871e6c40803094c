"""A small TOML writer for the configuration dbkeep.django generates.

Enough of TOML for dbkeep's configuration: strings, booleans, integers, floats, arrays of
those, tables and arrays of tables. Each line written is tagged with the Django setting it
came from, so an error dbkeep reports on a line can name that setting.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["Writer", "is_table", "is_table_array"]


def is_table(value: Any) -> bool:
    return isinstance(value, dict)


def is_table_array(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(v, dict) for v in value)


def _key(key: str) -> str:
    if key and all(c.isalnum() or c in "-_" for c in key) and key.isascii():
        return key
    return _string(key)


def _string(text: str) -> str:
    out = ['"']
    for c in text:
        if c == '"':
            out.append('\\"')
        elif c == "\\":
            out.append("\\\\")
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def value(v: Any, where: str) -> str:
    """``v`` as a TOML value; TypeError naming ``where`` for what TOML cannot hold here."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            raise TypeError(f"{where}: {v!r} is not a number dbkeep accepts")
        return repr(v)
    if isinstance(v, str):
        return _string(v)
    if hasattr(v, "__fspath__"):
        return _string(str(v))
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(value(x, f"{where}[{i}]") for i, x in enumerate(v)) + "]"
    if isinstance(v, dict):
        parts = [f"{_key(str(k))} = {value(x, f'{where}[{k!r}]')}" for k, x in v.items()]
        return "{ " + ", ".join(parts) + " }"
    raise TypeError(f"{where}: {type(v).__name__} values cannot go into dbkeep's configuration")


class Writer:
    """TOML text built line by line, each line tagged with its setting."""

    def __init__(self) -> None:
        self._lines: list[tuple[str, str | None]] = []

    def comment(self, text: str) -> None:
        self._lines.append((f"# {text}", None))

    def blank(self) -> None:
        self._lines.append(("", None))

    def pair(self, key: str, v: Any, setting: str) -> None:
        self._lines.append((f"{_key(key)} = {value(v, setting)}", setting))

    def header(self, path: list[str], setting: str, array: bool = False) -> None:
        name = ".".join(_key(p) for p in path)
        self._lines.append((f"[[{name}]]" if array else f"[{name}]", setting))

    def table(self, path: list[str], table: dict, setting: str, array: bool = False) -> None:
        """``table`` under ``[path]`` (or ``[[path]]``), its sub-tables after its keys."""
        self.header(path, setting, array)
        nested = []
        for k, v in table.items():
            where = f"{setting}[{k!r}]"
            if is_table(v) or is_table_array(v):
                nested.append((k, v, where))
            else:
                self.pair(str(k), v, where)
        for k, v, where in nested:
            if is_table(v):
                self.table([*path, str(k)], v, where)
            else:
                for i, item in enumerate(v):
                    self.table([*path, str(k)], item, f"{where}[{i}]", array=True)

    def text(self) -> str:
        return "\n".join(line for line, _ in self._lines) + "\n"

    def setting_at(self, line: int) -> str | None:
        """The setting written on ``line`` (1-based), or on the nearest line above with one."""
        for i in range(min(line, len(self._lines)) - 1, -1, -1):
            setting = self._lines[i][1]
            if setting is not None:
                return setting
        return None
