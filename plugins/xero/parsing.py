"""Parse Xero's JSON values into typed Python values: strict, pure and dependency-free.

This module owns the meaning of Xero's wire formats:

* ``/Date(1573755038314+0000)/``: the .NET (``DataContractJsonSerializer``) date. The number is
  milliseconds since the Unix epoch **in UTC**; the optional ``±hhmm`` suffix only says the value was
  a "local" time on the server and does not move the instant (Microsoft documents that the offset's
  number and sign are ignored when deserialising). Instants are therefore ``epoch + ms`` in UTC.
* Date-only fields (``Date``, ``DueDate`` …) hold the organisation's calendar day encoded as
  midnight ``+0000``: their value is the UTC calendar date of the millisecond count, never shifted.
* ISO strings (``2019-03-05T18:59:06Z``, ``2009-05-27T00:00:00``): without a zone they mean UTC.
* Money, quantities and rates are exact :class:`~decimal.Decimal` values read from JSON parsed with
  ``parse_float=Decimal`` (see :func:`loads`), never through ``float``.

Every parser raises :class:`XeroParseError` naming the field and the offending value.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

__all__ = [
    "EPOCH",
    "XeroParseError",
    "loads",
    "parse_bool",
    "parse_int",
    "parse_money",
    "parse_string",
    "parse_xero_date",
    "parse_xero_datetime",
]

#: The Unix epoch as an aware UTC datetime.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: ``/Date(ms)/`` or ``/Date(ms±hhmm)/``; the JSON escape ``\\/`` is already gone after decoding.
MS_DATE_RE = re.compile(r"^/Date\((?P<ms>-?\d{1,15})(?P<offset>[+-]\d{4})?\)/$")
_ISO_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MAX_REPR = 60


class XeroParseError(ValueError):
    """A Xero value that cannot be read as the type its field requires.

    :param field: the Xero field (dotted for nested values) or a description of it.
    :param value: the value as received.
    :param expected: what the field should hold.
    """

    def __init__(self, field: str, value: object, expected: str) -> None:
        self.field = field
        self.value = value
        self.expected = expected
        super().__init__(f"{field}: expected {expected}, got {_short_repr(value)}")


def _short_repr(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_REPR else text[: _MAX_REPR - 3] + "..."


def loads(text: str | bytes) -> Any:
    """Parse JSON text with every non-integer number as an exact :class:`~decimal.Decimal`.

    ``NaN`` and ``Infinity`` (not JSON, but accepted by Python's parser) are rejected.
    """
    return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"JSON constant {name} is not a number")


def parse_xero_datetime(value: object, field: str = "value") -> datetime:
    """Parse a Xero instant (``/Date(ms±hhmm)/`` or ISO 8601) into an aware UTC datetime.

    The millisecond count is UTC; a ``±hhmm`` suffix is validated but does not move the instant.
    ISO strings without a zone are UTC.

    :param value: the JSON value as received.
    :param field: the field name used in error messages.
    :raises XeroParseError: when ``value`` is not a well-formed Xero date.
    """
    if isinstance(value, str):
        match = MS_DATE_RE.match(value)
        if match is not None:
            _check_offset(match.group("offset"), field, value)
            try:
                return EPOCH + timedelta(milliseconds=int(match.group("ms")))
            except OverflowError:
                raise XeroParseError(field, value, "a Xero /Date(ms)/ within years 1-9999") from None
        if value[:1].isdigit():
            return _parse_iso(value, field)
    raise XeroParseError(field, value, "a Xero date like /Date(1573755038314+0000)/ or ISO 8601")


def _check_offset(offset: str | None, field: str, value: str) -> None:
    if offset is not None and (int(offset[1:3]) > 14 or int(offset[3:5]) > 59):
        raise XeroParseError(field, value, "a UTC offset between -1400 and +1400")


def _parse_iso(value: str, field: str) -> datetime:
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        if _ISO_DATE_RE.match(text):
            parsed = datetime.combine(date.fromisoformat(text), datetime.min.time())
        else:
            parsed = datetime.fromisoformat(text)
    except ValueError:
        raise XeroParseError(field, value, "an ISO 8601 date-time") from None
    if "T" not in text and " " not in text and not _ISO_DATE_RE.match(text):
        raise XeroParseError(field, value, "an ISO 8601 date-time")
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_xero_date(value: object, field: str = "value") -> date:
    """Parse a Xero calendar date (``Date``, ``DueDate`` …) into a :class:`~datetime.date`.

    Xero encodes the organisation-local day as midnight ``+0000``, so the result is the UTC date of
    the millisecond count, never shifted by the offset or any timezone. ISO strings keep their own
    calendar date (``2009-05-27T00:00:00`` → 2009-05-27), whatever zone they carry.

    :raises XeroParseError: when ``value`` is not a well-formed Xero date.
    """
    if isinstance(value, str) and value[:1].isdigit():
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            pass
        _parse_iso(value, field)  # raises with the right message
    return parse_xero_datetime(value, field).date()


def parse_money(value: object, places: int = 4, field: str = "value", max_digits: int = 19) -> Decimal:
    """Parse an exact decimal (money, quantity, rate) quantised to ``places`` decimal places.

    Accepts :class:`~decimal.Decimal` (from :func:`loads`), ``int`` and numeric strings. A value with
    more decimal places than ``places`` must round exactly (``1.50000`` is fine, ``1.23456`` with 4
    places is not): nothing is silently lost.

    :param places: decimal places of the target column (4 for money, 10 for rates).
    :param max_digits: total digits the target column holds (Arrow ``decimal128(max_digits, places)``).
    :raises XeroParseError: on floats, booleans, NaN/infinity, garbage, lost precision or overflow.
    """
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int) and not isinstance(value, bool):
        number = Decimal(value)
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise XeroParseError(field, value, "a decimal number") from None
    else:
        raise XeroParseError(field, value, "a decimal number")
    if not number.is_finite():
        raise XeroParseError(field, value, "a finite decimal number")
    quantum = Decimal(1).scaleb(-places)
    try:
        rounded = number.quantize(quantum, rounding=ROUND_HALF_EVEN)
    except InvalidOperation:
        raise XeroParseError(field, value, f"at most {max_digits - places} integer digits") from None
    if rounded != number:
        raise XeroParseError(field, value, f"at most {places} decimal places")
    if len(rounded.as_tuple().digits) > max_digits:
        raise XeroParseError(field, value, f"at most {max_digits - places} integer digits")
    return rounded


def parse_bool(value: object, field: str = "value") -> bool:
    """Parse a JSON boolean (or the strings ``"true"``/``"false"``, any case).

    :raises XeroParseError: on anything else (numbers included).
    """
    if value is True or value is False:
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
    raise XeroParseError(field, value, "a boolean")


def parse_int(value: object, field: str = "value") -> int:
    """Parse an integer from a JSON integer, an integral decimal or a string of digits.

    :raises XeroParseError: on fractions, booleans and garbage.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise XeroParseError(field, value, "an integer")


def parse_string(value: object, field: str = "value") -> str:
    """Return a JSON string; integers and decimals are accepted as their text (``"Code": 200``).

    :raises XeroParseError: on objects, arrays and booleans.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return str(value)
    raise XeroParseError(field, value, "a string")
