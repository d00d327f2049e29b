"""A JSON request body, read with bounds: the one way the API parses JSON from a client.

Python's json module, left to itself, turns hostile bodies into exceptions that are not
JSONDecodeError, each of which was an HTTP 500: nesting a few thousand deep (RecursionError), an
integer of more than 4,300 digits (ValueError); it accepts NaN and Infinity, which are not JSON,
1e400, which becomes float('inf'), and "\\ud800", a string UTF-8 cannot encode (a 500 where it
is saved). Here each is a 400 in the provider's shape.
"""

import json
import math
import re

from .errors import invalid

# Deeper than any request of the provider's needs (its deepest is a list of image strings).
MAX_DEPTH = 32
# The digits a number may have: well past any count, size or duration, far short of int()'s limit.
MAX_NUMBER_CHARS = 40
# A JSON string (skipped whole, brackets inside it don't count) or one bracket. The string
# pattern is the "unrolled loop", so a megabyte-long data URI is one match, without backtracking.
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)


def loads_bounded(raw: bytes | str):
    """The parsed body, or an ApiError (400) saying what is wrong with it."""
    try:
        text = raw.decode() if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise invalid(f"Malformed JSON in request body: {exc}") from None
    _check_depth(text)
    try:
        body = json.loads(text, parse_int=_integer, parse_float=_float, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise invalid(f"Malformed JSON in request body: {exc}") from None
    except _NumberError as exc:
        raise invalid(f"Malformed JSON in request body: {exc}") from None
    except RecursionError:  # the depth check counts what json does; this is only a backstop
        raise _too_deep() from None
    _check_text(body)
    return body


def _check_depth(text: str) -> None:
    """Refuse nesting past MAX_DEPTH before the recursive parser sees it. Malformed text may be
    counted oddly (an unclosed string); json.loads then refuses it anyway."""
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        found = match[0]
        if found in ("[", "{"):
            depth += 1
            if depth > MAX_DEPTH:
                raise _too_deep()
        elif found in ("]", "}"):
            depth -= 1


def _check_text(body) -> None:
    """Refuse a string holding a lone surrogate ("\\ud800"): JSON can write one, UTF-8 cannot,
    so it would fail where it is stored or sent on. The depth is bounded, so this walk is too."""
    pending = [body]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            try:
                value.encode()
            except UnicodeEncodeError:
                raise invalid(
                    "Malformed JSON in request body: a string holds a lone surrogate "
                    "(\\ud800 to \\udfff), which is not text."
                ) from None
        elif isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)


def _too_deep():
    return invalid(f"Malformed JSON in request body: nested more than {MAX_DEPTH} levels deep.")


class _NumberError(ValueError):
    pass


def _integer(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise _NumberError(f"the number {text[:20]}... has too many digits")
    return int(text)


def _float(text: str) -> float:
    value = float(text) if len(text) <= MAX_NUMBER_CHARS else math.inf
    if not math.isfinite(value):
        raise _NumberError(f"the number {text[:20]} is too large")
    return value


def _no_constant(name: str):
    raise _NumberError(f"{name} is not a JSON number")
