"""A JSON request body, read with bounds: the one way the API parses JSON from a client.

Python's json module, left to itself, turns hostile bodies into exceptions that are not
JSONDecodeError, each of which was an HTTP 500: nesting a few thousand deep (RecursionError), an
integer of more than 4,300 digits (ValueError), and it accepts NaN and Infinity, which are not
JSON, and 1e400, which becomes float('inf'). Here each is a 400 in the provider's shape.
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
        return json.loads(text, parse_int=_integer, parse_float=_float, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise invalid(f"Malformed JSON in request body: {exc}") from None
    except _NumberError as exc:
        raise invalid(f"Malformed JSON in request body: {exc}") from None
    except RecursionError:  # the depth check counts what json does; this is only a backstop
        raise _too_deep() from None


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
