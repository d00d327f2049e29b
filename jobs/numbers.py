"""Whole numbers from what people and scripts send: the one place user text becomes an int.

`str.isdigit()` is true for '²' and '①', which int() refuses; int() takes '٣' (Arabic-Indic
three), spaces and underscores, and refuses more than 4,300 digits with a ValueError; and a
number that fits in Python may not fit in the database's integer column. Each of those was an
HTTP 500 somewhere. parse_whole_number takes ASCII digits only, a bounded number of them, within
the range the caller names, and answers None for anything else: the caller says what is wrong in
its own words (a form error, the API's 400, or just ignoring a bad query parameter).
"""

# PostgreSQL's bigint, the widest integer column the studio has: a primary key or a count past
# it is an error from the database, not a row that is missing.
BIGINT_MAX = 2**63 - 1
# More digits than any bound we check against; refusing them first keeps int() from ever seeing
# thousands of digits.
MAX_DIGITS = 19


def parse_whole_number(text, *, minimum: int = 0, maximum: int = BIGINT_MAX) -> int | None:
    """`text` as an int if it is 1 to MAX_DIGITS ASCII digits (leading zeros allowed, no sign,
    no spaces) and from `minimum` to `maximum`; None for anything else, including non-strings."""
    if not isinstance(text, str) or not 0 < len(text) <= MAX_DIGITS:
        return None
    if not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if minimum <= number <= maximum else None
