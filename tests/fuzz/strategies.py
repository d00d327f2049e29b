"""Hypothesis strategies for hostile input: mostly invalid, with the classes that once ended in
a 500 drawn often (Unicode digits, huge and out-of-range numbers, NaN and 1e400, NUL bytes,
very long strings, deep JSON, the wrong JSON types)."""

import json

from hypothesis import strategies as st

HUGE = "9" * 5000  # past Python's 4,300-digit limit on int("...")
KNOWN_BAD = [
    "",
    " ",
    "²",
    "①",
    "٣",
    "5²",
    "-1",
    "0",
    "1e400",
    "-1e400",
    "NaN",
    "nan",
    "Infinity",
    "sNaN",
    str(2**63),
    str(2**64),
    "9" * 25,
    HUGE,
    "\x00",
    "a\x00b",
    "x" * 20_000,
    "auto",
    "1280x720",
    "9" * 30 + "x" + "9" * 30,
    "٣٠٠x٣٠٠",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "%00",
    "ir/test-video",
    "00000000-0000-0000-0000-000000000000",
    "true",
    "false",
    "all",
    "-total",
    "2024-02-30",
    "99999-01-01",
    "0001-01-01",
]

# Text a browser can send: any character but a lone surrogate, which UTF-8 cannot encode.
encodable_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)

hostile_text = st.one_of(
    st.sampled_from(KNOWN_BAD),
    encodable_text,
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.text("0123456789²³¹①②٣٠۵५", min_size=1, max_size=30),
    encodable_text.map(lambda text: text + "\x00"),
)


def query_for(names) -> st.SearchStrategy[dict]:
    """Some of `names`, each with a hostile value."""
    return st.dictionaries(st.sampled_from(list(names)), hostile_text, max_size=len(names))


# JSON values of every type, including the wrong ones for a field that wants a string.
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    hostile_text,
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(encodable_text, children, max_size=3)
    ),
    max_leaves=8,
)

GENERATION_FIELDS = ("model", "prompt", "size", "seconds", "response_format", "image", "image[]")


def raw_json_fragment() -> st.SearchStrategy[str]:
    """A JSON value as text, including what json.dumps would never write: numbers JSON cannot
    hold, NaN and Infinity, lone surrogates, and nesting deep enough to exhaust recursion."""
    return st.one_of(
        json_values.map(json.dumps),
        st.sampled_from(
            [
                "1e400",
                "-1e400",
                "NaN",
                "Infinity",
                "-Infinity",
                HUGE,
                "1" + "0" * 400,
                '"\\ud800"',
                '"a\\u0000b"',
                '"\\udfff\\ud800"',
                "[" * 40 + "]" * 40,
                "[" * 5000 + "]" * 5000,
                '{"a":' * 3000 + "1" + "}" * 3000,
                "[" * 100,
                '"unterminated',
            ]
        ),
    )


@st.composite
def generation_bodies(draw) -> str:
    """A generation request's JSON body as text: a few of the provider's fields, each with a
    hostile value, usually a model that exists, sometimes another key or not an object at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(raw_json_fragment())
    names = draw(st.lists(st.sampled_from(GENERATION_FIELDS), unique=True, max_size=4))
    parts = {"model": json.dumps("ir/test-video")} if draw(st.booleans()) else {}
    for name in names:
        parts[name] = draw(raw_json_fragment())
    if draw(st.booleans()):
        parts[draw(encodable_text)] = draw(raw_json_fragment())
    return "{" + ", ".join(f"{json.dumps(key)}: {value}" for key, value in parts.items()) + "}"
