import math

import pytest

from dmlbook import units
from conftest import BAD_NUMBERS


def test_conventions():
    assert units.GBIT == 10**9 and units.MBIT == 10**6
    assert units.GIB == 2**30 and units.BITS_PER_BYTE == 8
    # 100 Mbit/s moves 12.5 MB per second.
    assert units.bits_to_bytes(100 * units.MBIT) == 12.5e6


@pytest.mark.parametrize("bad", BAD_NUMBERS)
def test_check_number_rejects(bad):
    with pytest.raises(ValueError, match="speed"):
        units.check_number("speed", bad)


def test_check_number_accepts_and_zero_rule():
    assert units.check_number("x", 2.5) == 2.5
    assert units.check_number("x", 0, allow_zero=True) == 0
    with pytest.raises(ValueError, match=">= 0"):
        units.check_number("x", -1, allow_zero=True)


@pytest.mark.parametrize("bad", [0, -3, 2.5, math.nan, math.inf, "3", True, None])
def test_check_int_rejects(bad):
    with pytest.raises(ValueError, match="count must be a whole number >= 1"):
        units.check_int("count", bad)


def test_check_int_accepts_integral_floats():
    assert units.check_int("count", 8.0) == 8
    assert units.check_int("seed", 0, minimum=0) == 0


def test_probability_and_choice():
    assert units.check_probability("p", 0) == 0.0
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\]"):
        units.check_probability("p", 1.5)
    with pytest.raises(ValueError, match="kind must be one of 'a', 'b'"):
        units.check_choice("kind", "c", ("a", "b"))


def test_formatting():
    assert units.format_bytes(19_802_176) == "18.9 MiB"
    assert units.format_bytes(512) == "512 B"
    assert units.format_bps(100 * units.MBIT) == "100 Mbit/s"
    assert units.format_bps(1 * units.GBIT) == "1 Gbit/s"
