"""The API's one body parser: JSON, refused with a 400 (never a 500) when it is
beyond reason for this API.

DRF's ``JSONParser`` turns only ``ValueError`` into a 400. Three things got past
it and failed later, as a 500:
- nesting deep enough to exhaust the interpreter's recursion limit while
  parsing (``RecursionError``) or, a little less deep, while validating or
  rendering the echo of the value in an error message;
- strings holding a lone UTF-16 surrogate (``"\\ud800"`` is valid JSON, but no
  UTF-8 encoder - not the renderer echoing it back in an error, not psycopg -
  accepts it), in any field or list item;
- integers beyond any database column (``BIGINT``): every id, count and amount
  of this API fits in a signed 64-bit integer.
Refusing them here, once, covers every field of every endpoint (and every list
item), present and future, instead of a check per serializer field.
"""
import codecs
import json

from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.utils.json import strict_constant

# No request body of this API is nested more than a few levels ({"profile":
# {"skills": [...]}}): 32 leaves room and stays far from the recursion limit.
MAX_DEPTH = 32
MAX_INT = 2**63 - 1
MIN_INT = -(2**63)


def _is_valid_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


_BAD_TEXT = "Text must be valid Unicode (no lone surrogates)."
_BAD_INT = f"Must be an integer between {MIN_INT} and {MAX_INT}."


def check_parsed(value, depth: int = 0, field: str | None = None) -> None:
    """Raises ``ParseError`` for nesting beyond MAX_DEPTH, and a ``ValidationError``
    naming the top-level field for text that is not valid Unicode (in keys as well
    as values) and for integers beyond BIGINT, at any depth. (NUL characters are
    left to the fields: DRF's ``CharField`` refuses them with a message of its own.)"""
    if depth > MAX_DEPTH:
        raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels.")
    if isinstance(value, str):
        if not _is_valid_unicode(value):
            raise ValidationError({field or "non_field_errors": [_BAD_TEXT]})
    elif isinstance(value, int) and not isinstance(value, bool):
        if not MIN_INT <= value <= MAX_INT:
            raise ValidationError({field or "non_field_errors": [_BAD_INT]})
    elif isinstance(value, dict):
        for key, item in value.items():
            name = key if field is None else field
            if not _is_valid_unicode(key):
                raise ValidationError({"non_field_errors": [_BAD_TEXT]})
            check_parsed(item, depth + 1, name)
    elif isinstance(value, list):
        for item in value:
            check_parsed(item, depth + 1, field)


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
            )
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            message = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            raise ParseError(f"JSON parse error - {message}") from None
        check_parsed(data)
        return data
