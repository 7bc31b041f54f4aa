"""Xero value parsing: /Date(…)/ instants and calendar dates, exact money, booleans and integers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from xero.parsing import (
    XeroParseError,
    loads,
    parse_bool,
    parse_int,
    parse_money,
    parse_string,
    parse_xero_date,
    parse_xero_datetime,
)


class TestParseXeroDatetime:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            pytest.param(
                "/Date(1573755038314+0000)/",
                datetime(2019, 11, 14, 18, 10, 38, 314000, UTC),
                id="ms-with-offset",
            ),
            pytest.param(
                "/Date(1573755038314)/", datetime(2019, 11, 14, 18, 10, 38, 314000, UTC), id="ms-bare"
            ),
            pytest.param("/Date(0+0000)/", datetime(1970, 1, 1, tzinfo=UTC), id="zero"),
            pytest.param("/Date(-62135596800000+0000)/", datetime(1, 1, 1, tzinfo=UTC), id="year-one"),
            pytest.param("/Date(-1)/", datetime(1969, 12, 31, 23, 59, 59, 999000, UTC), id="negative-ms"),
            pytest.param("2019-03-05T18:59:06Z", datetime(2019, 3, 5, 18, 59, 6, tzinfo=UTC), id="iso-z"),
            pytest.param(
                "2019-03-05T18:59:06", datetime(2019, 3, 5, 18, 59, 6, tzinfo=UTC), id="iso-naive-is-utc"
            ),
            pytest.param(
                "2019-12-07T18:46:19.5165400",
                datetime(2019, 12, 7, 18, 46, 19, 516540, UTC),
                id="iso-7-digits",
            ),
            pytest.param(
                "2019-03-06T07:59:06+13:00", datetime(2019, 3, 5, 18, 59, 6, tzinfo=UTC), id="iso-offset"
            ),
        ],
    )
    def test_parses_to_aware_utc(self, value: str, expected: datetime) -> None:
        parsed = parse_xero_datetime(value)
        assert parsed == expected
        assert parsed.utcoffset() == timedelta(0)

    def test_offset_suffix_does_not_move_the_instant(self) -> None:
        # The .NET format's milliseconds are UTC; the suffix only marks a "local" value.
        base = parse_xero_datetime("/Date(1426849200000+0000)/")
        assert parse_xero_datetime("/Date(1426849200000+1300)/") == base
        assert parse_xero_datetime("/Date(1426849200000-0530)/") == base
        assert base == datetime(2015, 3, 20, 11, 0, tzinfo=UTC)

    def test_result_compares_with_other_zones(self) -> None:
        auckland = timezone(timedelta(hours=13))
        assert parse_xero_datetime("/Date(1426849200000+1300)/") == datetime(
            2015, 3, 21, 0, 0, tzinfo=auckland
        )

    @pytest.mark.parametrize(
        "value",
        [
            "/Date(abc)/",
            "/Date()/",
            "/Date(1573755038314+00)/",
            "/Date(1573755038314+2500)/",
            "/Date(1573755038314+0075)/",
            "Date(1573755038314)",
            "/Date(99999999999999999)/",
            "2019-13-45T00:00:00",
            "yesterday",
            "",
            None,
            1573755038314,
            Decimal("1.5"),
        ],
    )
    def test_rejects_garbage_with_field_and_value(self, value: object) -> None:
        with pytest.raises(XeroParseError) as caught:
            parse_xero_datetime(value, field="UpdatedDateUTC")
        message = str(caught.value)
        assert message.startswith("UpdatedDateUTC: expected ")
        assert repr(value)[:20] in message
        assert isinstance(caught.value, ValueError)
        assert caught.value.field == "UpdatedDateUTC"
        assert caught.value.value == value

    def test_out_of_range_year_is_a_parse_error(self) -> None:
        with pytest.raises(XeroParseError, match="years 1-9999"):
            parse_xero_datetime("/Date(-62135596800001)/")


class TestParseXeroDate:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            pytest.param("/Date(1539993600000+0000)/", date(2018, 10, 20), id="midnight-utc"),
            pytest.param("/Date(1539993600000+1300)/", date(2018, 10, 20), id="offset-ignored"),
            pytest.param("/Date(1539993600000-1000)/", date(2018, 10, 20), id="negative-offset-ignored"),
            pytest.param("/Date(0+0000)/", date(1970, 1, 1), id="zero"),
            pytest.param("/Date(-86400000+0000)/", date(1969, 12, 31), id="negative-day"),
            pytest.param("/Date(-1)/", date(1969, 12, 31), id="negative-ms-floors"),
            pytest.param("/Date(-62135596800000+0000)/", date(1, 1, 1), id="year-one"),
            pytest.param("2009-05-27T00:00:00", date(2009, 5, 27), id="iso-string"),
            pytest.param("2009-05-27T23:30:00-05:00", date(2009, 5, 27), id="iso-keeps-its-calendar-day"),
            pytest.param("2009-05-27", date(2009, 5, 27), id="iso-date"),
        ],
    )
    def test_calendar_date_never_shifted(self, value: str, expected: date) -> None:
        assert parse_xero_date(value) == expected

    @pytest.mark.parametrize("value", ["/Date(x)/", "2009-02-30T00:00:00", "", None, 20090527])
    def test_rejects_garbage(self, value: object) -> None:
        with pytest.raises(XeroParseError, match=r"^DueDate: expected "):
            parse_xero_date(value, field="DueDate")


class TestParseMoney:
    def test_json_numbers_are_exact_decimals(self) -> None:
        data = loads('{"SubTotal": 0.10, "TotalTax": 0.20, "Total": 0.30, "Big": 123456789012345.6789}')
        assert all(isinstance(value, Decimal) for value in data.values())
        assert parse_money(data["SubTotal"]) + parse_money(data["TotalTax"]) == parse_money(data["Total"])
        assert parse_money(data["Big"]) == Decimal("123456789012345.6789")

    @pytest.mark.parametrize(
        ("value", "places", "expected"),
        [
            (Decimal("1.5"), 4, "1.5000"),
            (Decimal("-0.01"), 4, "-0.0100"),
            (Decimal("1E+2"), 4, "100.0000"),
            (Decimal("1.50000"), 4, "1.5000"),
            (115, 4, "115.0000"),
            ("12.34", 4, "12.3400"),
            (" 7 ", 4, "7.0000"),
            (Decimal("1.123456"), 10, "1.1234560000"),
        ],
    )
    def test_accepts_decimals_ints_and_numeric_strings(
        self, value: object, places: int, expected: str
    ) -> None:
        parsed = parse_money(value, places=places)
        assert isinstance(parsed, Decimal)
        assert str(parsed) == expected

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (0.1, "a decimal number"),
            (True, "a decimal number"),
            (None, "a decimal number"),
            ("abc", "a decimal number"),
            ("", "a decimal number"),
            (Decimal("NaN"), "a finite decimal number"),
            ("NaN", "a finite decimal number"),
            ("-Infinity", "a finite decimal number"),
            (Decimal("1.23456"), "at most 4 decimal places"),
            (Decimal("1234567890123456"), "at most 15 integer digits"),
        ],
    )
    def test_rejects_floats_garbage_and_lost_precision(self, value: object, expected: str) -> None:
        with pytest.raises(XeroParseError) as caught:
            parse_money(value, field="Total")
        assert str(caught.value).startswith(f"Total: expected {expected}, got ")

    def test_json_constants_are_rejected(self) -> None:
        with pytest.raises(ValueError, match="NaN"):
            loads('{"Total": NaN}')


class TestScalars:
    @pytest.mark.parametrize(
        ("value", "expected"), [(True, True), (False, False), ("true", True), ("FALSE", False)]
    )
    def test_bool(self, value: object, expected: bool) -> None:
        assert parse_bool(value) is expected

    @pytest.mark.parametrize("value", [1, 0, "yes", None, Decimal("1")])
    def test_bool_rejects(self, value: object) -> None:
        with pytest.raises(XeroParseError, match=r"^IsSupplier: expected a boolean"):
            parse_bool(value, field="IsSupplier")

    @pytest.mark.parametrize(("value", "expected"), [(3, 3), (Decimal("4"), 4), ("12", 12), (-1, -1)])
    def test_int(self, value: object, expected: int) -> None:
        assert parse_int(value) == expected

    @pytest.mark.parametrize("value", [True, Decimal("1.5"), "1.5", "x", None])
    def test_int_rejects(self, value: object) -> None:
        with pytest.raises(XeroParseError, match="expected an integer"):
            parse_int(value)

    def test_string(self) -> None:
        assert parse_string("INV-1") == "INV-1"
        assert parse_string(200) == "200"
        with pytest.raises(XeroParseError, match=r"^Code: expected a string, got \{'a': 1\}"):
            parse_string({"a": 1}, field="Code")
        with pytest.raises(XeroParseError):
            parse_string(False)

    def test_long_values_are_shortened_in_messages(self) -> None:
        with pytest.raises(XeroParseError) as caught:
            parse_xero_date("x" * 500, field="Date")
        assert len(str(caught.value)) < 200
