"""JSON text as ``json.dumps`` writes it (its default separators, ASCII only), without the
``json`` module: it imports ``re`` and both of its halves, a fifth of the node supervisor's
start, and every node starts a supervisor. Standard library only, Python >= 3.9.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_ESCAPES = {i: "\\u%04x" % i for i in (*range(32), 127)}
_ESCAPES.update(
    {
        ord('"'): '\\"',
        ord("\\"): "\\\\",
        ord("\n"): "\\n",
        ord("\r"): "\\r",
        ord("\t"): "\\t",
        ord("\b"): "\\b",
        ord("\f"): "\\f",
    }
)


def _string(text: str) -> str:
    out = text.translate(_ESCAPES)
    if not out.isascii():
        out = "".join(c if ord(c) < 128 else _non_ascii(ord(c)) for c in out)
    return '"' + out + '"'


def _non_ascii(code: int) -> str:
    if code < 0x10000:
        return "\\u%04x" % code
    code -= 0x10000
    return "\\u%04x\\u%04x" % (0xD800 | (code >> 10), 0xDC00 | (code & 0x3FF))


def dumps(value: Any) -> str:
    """``json.dumps(value)`` for str, int, float, bool, None, lists, tuples and dicts with
    string keys (what the supervisor writes)."""
    if isinstance(value, str):
        return _string(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return float.__repr__(value)
    if isinstance(value, dict):
        return "{" + ", ".join(_string(str(k)) + ": " + dumps(v) for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(dumps(v) for v in value) + "]"
    raise TypeError("not JSON: %r" % (value,))
