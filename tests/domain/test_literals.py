"""`domain.literals`: the Python clients' `str(dict)` query values read back exactly, and every other text refused
with a reason and a position (never `eval`, never `ast`)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memserver.domain import limits
from memserver.domain.literals import MAX_CHARS, LiteralError, parse

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=limits.MIN_INT, max_value=limits.MAX_INT)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()  # quotes, backslashes, control and non-BMP characters (surrogates excluded: no UTF-8 has them)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.tuples(inner)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(), inner, max_size=5)
    ),
    max_leaves=30,
)


def as_json_like(v: Any) -> Any:
    """What a value means once read back: tuples are lists."""
    if isinstance(v, tuple | list):
        return [as_json_like(x) for x in v]
    if isinstance(v, dict):
        return {k: as_json_like(x) for k, x in v.items()}
    return v


@settings(max_examples=400, deadline=None)
@given(values)
def test_parse_reads_back_what_repr_printed(v: Any) -> None:
    assert parse(repr(v)) == as_json_like(v)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(), values, max_size=4))
def test_str_of_a_dict_as_httpx_sends_it(v: dict[str, Any]) -> None:
    assert parse(str(v)) == as_json_like(v)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("{'user_id': 'alice'}", {"user_id": "alice"}),
        ("""{'user_id': "o'brien", 'x': None, 'b': True, 'n': 1.5, 'u': 'é'}""",
         {"user_id": "o'brien", "x": None, "b": True, "n": 1.5, "u": "é"}),
        ("{'AND': [{'user_id': 'a'}, {'agent_id': 'b'}]}", {"AND": [{"user_id": "a"}, {"agent_id": "b"}]}),
        ("('a',)", ["a"]),
        ("()", []),
        ("('a')", "a"),  # a parenthesised value, as in Python
        ("[1, 2,]", [1, 2]),
        ("{'a': 1,}", {"a": 1}),
        (" {\t'a' :\n[ ] } ", {"a": []}),
        ("-1e-05", -1e-05),
        ("1e+16", 1e16),
        ("-0", 0),
        ("18446744073709551615", 2**64 - 1),
        (r"'\x41\u00e9\U0001f600\n\r\t\\\'\"'", "Aé😀\n\r\t\\'\""),
    ],
)  # fmt: skip
def test_literals_as_python_prints_them(text: str, value: Any) -> None:
    assert parse(text) == value


@pytest.mark.parametrize(
    ("text", "reason", "at"),
    [
        ("", "expected a value, found the end", 0),
        ("{'a': }", "unexpected character '}'", 6),
        ("{1, 2}", "sets are not supported; send a list", 0),
        ("set()", "sets are not supported; send a list", 0),
        ("{1: 2}", "dict keys must be strings", 1),
        ("{'d': datetime.datetime(2024, 1, 1)}",
         "datetime.datetime is not a literal: send dates as ISO strings, e.g. '2024-01-01'", 6),
        ("{'x': foo}", "foo is not a literal (only strings, numbers, True, False, None, dicts and lists)", 6),
        ("[object Object]", "object is not a literal (only strings, numbers, True, False, None, dicts and lists)", 1),
        ("inf", "numbers must be finite", 0),
        ("-inf", "numbers must be finite", 0),
        ("nan", "numbers must be finite", 0),
        ("1e400", "numbers must be finite", 0),
        ("0x1", "not a number as Python prints it (no hex, underscores, complex or inf)", 0),
        ("1_0", "not a number as Python prints it (no hex, underscores, complex or inf)", 0),
        ("1j", "not a number as Python prints it (no hex, underscores, complex or inf)", 0),
        ("01", "not a number as Python prints it (no hex, underscores, complex or inf)", 0),
        ("1.", "not a number as Python prints it (no hex, underscores, complex or inf)", 0),
        ("+1", "unexpected character '+'", 0),
        ("123456789012345678901", "integers must fit in 64 bits", 0),
        ("-9223372036854775809", "integers must fit in 64 bits", 0),
        ("b'x'", "bytes are not supported; send a string", 0),
        ("u'x'", "string prefix 'u' is not supported", 0),
        ("...", "Ellipsis is not a value", 0),
        ("'abc", "unterminated string", 0),
        ("'abc\\", "unterminated string", 4),
        ("'a\nb'", "a line break inside a string", 2),
        (r"'\q'", "unsupported escape \\q", 1),
        (r"'\x4'", "\\x takes 2 hex digits", 1),
        (r"'\u12g4'", "\\u takes 4 hex digits", 1),
        (r"'\ud800'", "lone surrogates are not allowed", 1),
        (r"'\U00110000'", "not a Unicode code point", 1),
        ("{'a': 1} x", "unexpected text after the value", 9),
        ("{'a' 1}", "expected ':', found '1'", 5),
        ("[1 2]", "expected ',' or ']', found '2'", 3),
        ("{'a': 1", "expected ',' or '}', found the end", 7),
        ("[1,,]", "unexpected character ','", 3),
        ("'a' 'b'", "unexpected text after the value", 4),
    ],
)  # fmt: skip
def test_each_refusal_says_what_and_where(text: str, reason: str, at: int) -> None:
    with pytest.raises(LiteralError) as caught:
        parse(text)
    assert (caught.value.reason, caught.value.position) == (reason, at)
    assert str(caught.value) == f"{reason} at character {at}"


def test_the_bounds_hold() -> None:
    assert parse("[" * 32 + "]" * 32) is not None
    with pytest.raises(LiteralError, match="nested deeper than 32 levels at character 32"):
        parse("[" * 33 + "]" * 33)
    with pytest.raises(LiteralError, match="nested deeper than 3 levels"):
        parse("{'a': {'b': {'c': {}}}}", max_depth=3)
    assert len(parse(repr(list(range(1000))))) == 1000
    with pytest.raises(LiteralError, match="more than 1000 items in one list at character 0"):
        parse(repr(list(range(1001))))
    with pytest.raises(LiteralError, match="more than 2 items in one object"):
        parse(repr({"a": 1, "b": 2, "c": 3}), max_items=2)
    assert parse(repr("x" * (MAX_CHARS - 2))) == "x" * (MAX_CHARS - 2)
    with pytest.raises(LiteralError, match=f"longer than {MAX_CHARS} characters"):
        parse(repr("x" * (MAX_CHARS - 1)))
