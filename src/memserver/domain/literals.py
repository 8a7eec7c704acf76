r"""A bounded reader of Python literal reprs: what `str(dict)` prints, read back without `eval` or `ast`.

The Python clients send an object-valued query parameter (`delete_all(filters={...})`, `get_all(metadata={...})`)
through httpx, which puts `str(value)` in the query string: `{'user_id': 'alice', 'n': 1.5, 'b': True}`. This
module reads exactly the subset `repr` prints for JSON-like data, and nothing else:

    value := dict | list | tuple | str | number | True | False | None
    dict  := '{' [str ':' value (',' str ':' value)* [',']] '}'      (lists '[...]', tuples '(...)' -> list)
    str   := '...' | "..."  with only the escapes repr emits: \\ \' \" \n \r \t \xhh \uhhhh \Uhhhhhhhh
    number:= -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?   (ints within 64 bits, finite floats)

A recursive descent over an index, with an explicit depth bound; linear in the input (every regex is
anchored at the current position and cannot backtrack), O(depth) stack. Anything else (sets, bytes, names such
as `datetime.datetime(...)`, `inf`, `0x1`, string prefixes) is a `LiteralError` that says what and where.
"""

from __future__ import annotations

import math
import re
from typing import Any

from memserver.domain import limits

MAX_CHARS = 65_536
_WS = re.compile(r"[ \t\r\n]*")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_PLAIN = {"'": re.compile(r"[^'\\\r\n]*"), '"': re.compile(r'[^"\\\r\n]*')}
_SIMPLE_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "r": "\r", "t": "\t"}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}
_CONSTANTS: dict[str, Any] = {"True": True, "False": False, "None": None}
_MAX_INT_DIGITS = 20  # 2**64 has 20 digits: longer is out of range (and int() of it would be slow)


class LiteralError(ValueError):
    """The text is not a literal this reader takes; `reason` and `position` (a character index) say why."""

    def __init__(self, reason: str, position: int) -> None:
        super().__init__(f"{reason} at character {position}")
        self.reason = reason
        self.position = position


def parse(text: str, *, max_depth: int | None = None, max_items: int | None = None) -> Any:
    """The value `text` is the repr of; containers nest at most `max_depth` deep and hold at most `max_items`
    (default: MEMSERVER_LIMITS__MAX_JSON_DEPTH and __MAX_LIST_ITEMS)."""
    if len(text) > MAX_CHARS:
        raise LiteralError(f"the text is longer than {MAX_CHARS} characters", MAX_CHARS)
    bounds = limits.current()
    reader = _Reader(text, max_depth or bounds.max_json_depth, max_items or bounds.max_list_items)
    value = reader.value(0)
    reader.skip_ws()
    if reader.pos < len(text):
        raise LiteralError("unexpected text after the value", reader.pos)
    return value


class _Reader:
    def __init__(self, text: str, max_depth: int, max_items: int) -> None:
        self.s = text
        self.pos = 0
        self.max_depth = max_depth
        self.max_items = max_items

    def fail(self, reason: str, at: int | None = None) -> LiteralError:
        return LiteralError(reason, self.pos if at is None else at)

    def skip_ws(self) -> None:
        match = _WS.match(self.s, self.pos)
        assert match is not None  # `*` always matches
        self.pos = match.end()

    def peek(self) -> str:
        self.skip_ws()
        return self.s[self.pos] if self.pos < len(self.s) else ""

    def expect(self, char: str) -> None:
        if self.peek() != char:
            found = repr(self.s[self.pos]) if self.pos < len(self.s) else "the end"
            raise self.fail(f"expected {char!r}, found {found}")
        self.pos += 1

    def value(self, depth: int) -> Any:
        c = self.peek()
        if c == "":
            raise self.fail("expected a value, found the end")
        if c in "{[(":
            if depth >= self.max_depth:
                raise self.fail(f"nested deeper than {self.max_depth} levels")
            if c == "{":
                return self.braces(depth + 1)
            return self.sequence("]" if c == "[" else ")", depth + 1)
        if c in ("'", '"'):
            return self.string()
        if c == "-" or c in "0123456789":
            return self.number()
        if c == "." and self.s.startswith("...", self.pos):
            raise self.fail("Ellipsis is not a value")
        return self.name()

    def braces(self, depth: int) -> Any:
        """A dict, or (refused) a set: both open with '{'."""
        start = self.pos
        self.pos += 1
        if self.peek() == "}":
            self.pos += 1
            return {}
        out: dict[str, Any] = {}
        while True:
            key_at = self.pos
            key = self.value(depth)
            if self.peek() in (",", "}"):
                raise self.fail("sets are not supported; send a list", start)
            self.expect(":")
            if not isinstance(key, str):
                raise self.fail("dict keys must be strings", key_at)
            out[key] = self.value(depth)
            if len(out) > self.max_items:
                raise self.fail(f"more than {self.max_items} items in one object", start)
            if not self.more("}"):
                return out

    def sequence(self, close: str, depth: int) -> Any:
        """A list, or a tuple (read as a list); `(x)` without a comma is x, as in Python."""
        start = self.pos
        self.pos += 1
        out: list[Any] = []
        if self.peek() == close:
            self.pos += 1
            return out
        while True:
            out.append(self.value(depth))
            if len(out) > self.max_items:
                raise self.fail(f"more than {self.max_items} items in one list", start)
            if close == ")" and len(out) == 1 and self.peek() == ")":
                self.pos += 1
                return out[0]
            if not self.more(close):
                return out

    def more(self, close: str) -> bool:
        """After an item: ',' (then maybe the closing bracket) or the closing bracket."""
        c = self.peek()
        if c == close:
            self.pos += 1
            return False
        if c != ",":
            found = repr(c) if c else "the end"
            raise self.fail(f"expected ',' or {close!r}, found {found}")
        self.pos += 1
        if self.peek() == close:
            self.pos += 1
            return False
        return True

    def string(self) -> str:
        quote = self.s[self.pos]
        start = self.pos
        self.pos += 1
        parts: list[str] = []
        plain = _PLAIN[quote]
        while True:
            match = plain.match(self.s, self.pos)
            assert match is not None
            parts.append(match.group())
            self.pos = match.end()
            if self.pos >= len(self.s):
                raise self.fail("unterminated string", start)
            c = self.s[self.pos]
            if c == quote:
                self.pos += 1
                return "".join(parts)
            if c != "\\":
                raise self.fail("a line break inside a string")
            parts.append(self.escape())

    def escape(self) -> str:
        at = self.pos
        code = self.s[self.pos + 1 : self.pos + 2]
        if code in _SIMPLE_ESCAPES:
            self.pos += 2
            return _SIMPLE_ESCAPES[code]
        width = _HEX_ESCAPES.get(code)
        if width is None:
            raise self.fail(f"unsupported escape \\{code}" if code else "unterminated string", at)
        digits = self.s[self.pos + 2 : self.pos + 2 + width]
        if len(digits) != width or any(d not in "0123456789abcdefABCDEF" for d in digits):
            raise self.fail(f"\\{code} takes {width} hex digits", at)
        point = int(digits, 16)
        if point > 0x10FFFF:
            raise self.fail("not a Unicode code point", at)
        if 0xD800 <= point <= 0xDFFF:
            raise self.fail("lone surrogates are not allowed", at)
        self.pos += 2 + width
        return chr(point)

    def number(self) -> int | float:
        start = self.pos
        match = _NUMBER.match(self.s, self.pos)
        if match is None:
            finite = self.s.startswith(("-inf", "-nan"), self.pos)
            raise self.fail("numbers must be finite" if finite else "expected a number")
        token = match.group()
        end = match.end()
        if end < len(self.s) and (self.s[end].isalnum() or self.s[end] in "._"):
            raise self.fail("not a number as Python prints it (no hex, underscores, complex or inf)", start)
        self.pos = end
        if "." in token or "e" in token or "E" in token:
            value = float(token)
            if not math.isfinite(value):
                raise self.fail("numbers must be finite", start)
            return value
        if len(token.lstrip("-")) > _MAX_INT_DIGITS or not limits.MIN_INT <= (n := int(token)) <= limits.MAX_INT:
            raise self.fail("integers must fit in 64 bits", start)
        return n

    def name(self) -> Any:
        start = self.pos
        match = _NAME.match(self.s, self.pos)
        if match is None:
            raise self.fail(f"unexpected character {self.s[self.pos]!r}")
        word = match.group()
        if word in _CONSTANTS:
            self.pos = match.end()
            return _CONSTANTS[word]
        following = self.s[match.end() : match.end() + 1]
        if word in ("b", "rb", "br", "B") and following in ("'", '"'):
            raise self.fail("bytes are not supported; send a string", start)
        if following in ("'", '"'):
            raise self.fail(f"string prefix {word!r} is not supported", start)
        if word in ("inf", "nan"):
            raise self.fail("numbers must be finite", start)
        if word == "set":
            raise self.fail("sets are not supported; send a list", start)
        if "date" in word or "time" in word:
            raise self.fail(f"{word} is not a literal: send dates as ISO strings, e.g. '2024-01-01'", start)
        raise self.fail(f"{word} is not a literal (only strings, numbers, True, False, None, dicts and lists)", start)
