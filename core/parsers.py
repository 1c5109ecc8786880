"""The API's one body parser: JSON, refused with a 400 (never a 500) when it is
beyond reason for this API.

DRF's ``JSONParser`` turns only ``ValueError`` into a 400. Three things got past
it and failed later, as a 500:
- nesting deep enough to exhaust the interpreter's recursion limit while
  parsing (``RecursionError``) or, a little less deep, while validating or
  rendering the echo of the value in an error message;
- strings holding a lone UTF-16 surrogate (``"\\ud800"`` is valid JSON, but no
  UTF-8 encoder - not the renderer echoing it back, not psycopg - accepts it)
  or a NUL character (PostgreSQL's text type refuses it);
- integers beyond any database column (``BIGINT``): every id, count and amount
  of this API fits in a signed 64-bit integer.
Refusing them here, once, covers every field of every endpoint (and every list
item), present and future, instead of a check per serializer field.
"""
import codecs
import json

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils.json import strict_constant

# No request body of this API is nested more than a few levels ({"profile":
# {"skills": [...]}}): 32 leaves room and stays far from the recursion limit.
MAX_DEPTH = 32
MAX_INT = 2**63 - 1
MIN_INT = -(2**63)


def _bounded_int(text: str) -> int:
    value = int(text)  # int() itself refuses more than sys.get_int_max_str_digits() digits
    if not MIN_INT <= value <= MAX_INT:
        raise ValueError(f"integer out of range: {text[:30]}{'...' if len(text) > 30 else ''}")
    return value


def _bad_text(text: str) -> bool:
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return True
    return False


def check_parsed(value, depth: int = 0) -> None:
    """Raises ``ParseError`` for nesting beyond MAX_DEPTH or text that is not
    valid Unicode (or holds NUL), in keys as well as values, at any depth."""
    if depth > MAX_DEPTH:
        raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels.")
    if isinstance(value, str):
        if _bad_text(value):
            raise ParseError("JSON parse error - text must be valid Unicode without NUL characters.")
    elif isinstance(value, dict):
        for key, item in value.items():
            if _bad_text(key):
                raise ParseError("JSON parse error - text must be valid Unicode without NUL characters.")
            check_parsed(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_parsed(item, depth + 1)


class StrictJSONParser(JSONParser):
    """``JSONParser`` with a depth limit, valid Unicode only and 64-bit integers."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding") or "utf-8"
        try:
            decoded = codecs.getreader(encoding)(stream)
            data = json.load(
                decoded,
                parse_constant=strict_constant if self.strict else None,
                parse_int=_bounded_int,
            )
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            message = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            raise ParseError(f"JSON parse error - {message}")
        check_parsed(data)
        return data
