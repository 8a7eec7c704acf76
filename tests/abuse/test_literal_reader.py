"""The literal reader of query values (`domain.literals`) meets text anyone can send: whatever it is given, it
answers a value or its own `LiteralError` (a 400 at the edge), never another exception, and never more than
linear work (bounds as in `test_cpu_bounds`: they catch super-linear work, not slowness)."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from memserver.domain.literals import MAX_CHARS, LiteralError, parse
from tests.abuse.test_cpu_bounds import finishes_in_thread

REPR_ALPHABET = "{}[](),:'\"\\ \t\n-+0123456789.eExuUabcdfTrueFalsNonj_é😀"


def answers_or_refuses(text: str) -> None:
    with contextlib.suppress(LiteralError):  # any other exception fails the test
        parse(text)


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet=REPR_ALPHABET, max_size=80) | st.text(max_size=80))
def test_any_text_is_a_value_or_a_literal_error(text: str) -> None:
    answers_or_refuses(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["{", "}", "[", "]", "(", ")", ",", ":", "'a'", "1", "True", " ", "'\\"]), max_size=60))
def test_any_bracket_soup_is_a_value_or_a_literal_error(tokens: list[str]) -> None:
    answers_or_refuses("".join(tokens))


def test_the_largest_inputs_take_linear_time() -> None:
    n = MAX_CHARS
    hostile = [
        "[" * n,  # depth: refused at the bound, not after n frames
        "{'a': " * (n // 6),
        "'" + "\\x41" * (n // 4 - 1) + "'",
        "'" + "a" * (n - 2) + "'",
        "[" + "1," * 999 + "1]",
        "[" + "1," * (n // 2 - 1),
        "9" * n,
        "(" * (n // 2) + ")" * (n // 2),
        "'" + "\\" * (n - 1),
        "[" + "'" + "a', '" * (n // 6),
    ]
    for text in hostile:
        finishes_in_thread(lambda text=text: answers_or_refuses(text))
