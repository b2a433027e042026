"""JSON text in and out through CPython's C accelerators, without loading the `json` package.

Every first run of the runtime parses its manifest and writes and parses one
op-registration JSON.  The parsing and the writing are done in C either way
(`_json`, the module behind `json`); what `import json` adds is six regular
expressions compiled at import, about 1% of a first run's instructions
(`valgrind --tool=callgrind`, docs/simulated-device.md "Launch path").

`loads` and `dumps` give what `json.loads(text)` and
`json.dumps(obj, sort_keys=True)` give, and raise what they raise: a
malformed document is a `json.JSONDecodeError` (the package is loaded then,
to raise it).  An interpreter without `_json` uses the package.
"""

from __future__ import annotations

TYPE_CHECKING = False  # on the runtime's start-up path: no typing import
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

#: JSON's whitespace (RFC 8259): what json.loads skips around the value.
_WHITESPACE = " \t\n\r"

_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


class _Decoding:
    """The settings the C scanner reads off its context: json.loads' defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__


def _unserializable(obj: object) -> Any:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


_scan: Callable[[str, int], tuple[Any, int]] | None
try:
    from _json import encode_basestring_ascii, make_encoder, make_scanner
except ImportError:  # not CPython: the json package does the work
    _scan = None
else:
    _scan = make_scanner(_Decoding())  # type: ignore[arg-type]  # any object with these fields


def _error(msg: str, text: str, pos: int) -> Exception:
    from json import JSONDecodeError

    return JSONDecodeError(msg, text, pos)


def loads(text: str) -> Any:
    """`json.loads(text)` for a str."""
    if _scan is None:
        import json

        return json.loads(text)
    if text.startswith("\ufeff"):
        raise _error("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration as stop:
        raise _error("Expecting value", text, stop.value) from None
    rest = text[end:]
    stripped = rest.lstrip(_WHITESPACE)
    if stripped:
        raise _error("Extra data", text, end + len(rest) - len(stripped))
    return value


def dumps(obj: object) -> str:
    """`json.dumps(obj, sort_keys=True)`: ASCII, `, ` and `: ` separators, no indent."""
    if _scan is None:
        import json

        return json.dumps(obj, sort_keys=True)
    # A new encoder per call: its markers dict (circular-reference check) is per document.
    encode = make_encoder(
        {}, _unserializable, encode_basestring_ascii, None, ": ", ", ", True, False, True
    )
    return "".join(encode(obj, 0))
