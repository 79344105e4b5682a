"""The contract of dmlbook.units, one test per behaviour `make mutants` found unguarded.

The mutation run of units.py (benchmarks/README.md, "Mutation testing") left
these without a test: the value of each documented bound (the lecturers'
page states every one; a changed constant must not go unnoticed), the exact
wording of each refusal (the parameter's name and what it accepts), the edge
of each range, and the formatters' switch to scientific notation.
"""

import importlib
import math
import re

import numpy as np
import pytest
import torch

from book_helpers import ROOT
from dmlbook import units
from dmlbook.units import (check_choice, check_diverged, check_number, check_probability,
                           check_product, check_tensor, format_bps, format_bytes)

SUPERSCRIPT = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")


def _documented_value(text: str):
    """A value as the lecturers' page writes it: 4,096, 10¹⁵, 10⁻⁹ or the largest float64."""
    if text == "the largest float64":
        return units.sys.float_info.max
    power = re.fullmatch(r"10([⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+)", text)
    if power:
        exponent = int(power.group(1).translate(SUPERSCRIPT))
        return 10**exponent if exponent >= 0 else 10.0**exponent
    assert re.fullmatch(r"\d{1,3}(,\d{3})*", text), text
    return int(text.replace(",", ""))


def _assert_documented(name: str, value, text: str) -> None:
    documented = _documented_value(text)
    if isinstance(value, float):  # 1e30 is not the integer 10**30
        assert math.isclose(value, documented, rel_tol=1e-15), name
    else:
        assert type(value) is int and value == documented, name


def test_every_bound_has_the_value_the_lecturers_page_states():
    text = (ROOT / "lecturers.md").read_text()
    rows = dict(re.findall(r"^\| `((?:MAX|MIN|MACS)_[A-Z_]+)` \| ([^|]+?) \|", text, re.M))
    constants = {name for name in dir(units) if name.startswith(("MAX_", "MIN_", "MACS_"))}
    assert set(rows) == constants
    for name in sorted(constants):
        _assert_documented(name, getattr(units, name), rows[name])


def test_every_module_bound_on_the_lecturers_page_has_its_value():
    text = (ROOT / "lecturers.md").read_text()
    rows = re.findall(r"^\| `([a-z_.]+)\.((?:MAX|MIN)_[A-Z_]+)` \| ([^|]+?) \|", text, re.M)
    assert {module for module, _, _ in rows} >= {"gossip", "ledger", "data", "costs",
                                                 "check.network", "check.harness",
                                                 "check.display"}
    for module, name, documented in rows:
        _assert_documented(name, getattr(importlib.import_module(f"dmlbook.{module}"), name),
                           documented)


@pytest.mark.parametrize("kwargs, value, message", [
    ({}, -1, "x must be a finite number > 0, got -1"),
    ({}, 0, "x must be a finite number > 0, got 0"),
    ({"allow_zero": True}, -1, "x must be a finite number >= 0, got -1"),
    ({}, math.nan, "x must be a finite number > 0, got nan"),
    ({}, "3", "x must be a finite number > 0, got '3' (str)"),
    ({}, True, "x must be a finite number > 0, got True (bool)"),
    ({"maximum": 10}, 11, "x must be a finite number > 0 and <= 10, got 11"),
    # A bound too large for %g of an int is written from its float; one too
    # large for a float is named.
    ({"maximum": 10**301}, 10**302, "x must be a finite number > 0 and <= 1e+301, got " + str(10**302)),
    ({"maximum": 10**400}, 10**401, "x must be a finite number > 0 and <= the largest float, got "
     + str(10**401)),
    ({"minimum": 1}, 0.5, "x must be a finite number >= 1, got 0.5"),
    ({"minimum": 1e-9, "maximum": 2}, 1e-10, "x must be a finite number >= 1e-09 and <= 2, got 1e-10"),
])
def test_check_number_refusals_name_the_parameter_and_the_range(kwargs, value, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        check_number("x", value, **kwargs)


def test_check_number_ranges_are_inclusive():
    assert check_number("x", 1, minimum=1) == 1
    assert check_number("x", 10, maximum=10) == 10
    assert check_number("x", 0, allow_zero=True) == 0
    assert check_probability("p", 1) == 1.0 and check_probability("p", 0) == 0.0
    with pytest.raises(ValueError, match=r"^p must be a probability in \[0, 1\], got 1.5$"):
        check_probability("p", 1.5)


def test_check_choice_message_and_kinds():
    with pytest.raises(ValueError, match=r"^kind must be one of 'ring', 'torus', got 'star'$"):
        check_choice("kind", "star", ("ring", "torus"))
    with pytest.raises(ValueError, match=r"^lr must be one of 1.0, 2.0, got True$"):
        check_choice("lr", True, (1.0, 2.0))  # a bool never stands for a float
    assert check_choice("lr", np.float32(2.0), (1.0, 2.0)) == 2.0
    # Choices of another kind (tuples) match an equal value of the same type
    # only: a new tuple, not an equal set of another type.
    assert check_choice("level", tuple(["topk", 5]), [("topk", 5)]) == ("topk", 5)
    with pytest.raises(ValueError, match="^level must be one of"):
        check_choice("level", ["topk", 5], [("topk", 5)])
    with pytest.raises(ValueError, match=r"^ids must be one of frozenset\(\{1\}\), got \{1\}$"):
        check_choice("ids", {1}, [frozenset({1})])


def test_check_product_is_inclusive_and_says_what_it_counts():
    assert check_product("rounds", 5, 5, "n x rounds") == 5
    with pytest.raises(ValueError, match=r"^rounds must keep n x rounds <= 5, got 6$"):
        check_product("rounds", 6, 5, "n x rounds")


def test_check_diverged_looks_past_a_missing_value():
    check_diverged(3, loss=None, params=torch.ones(2))
    with pytest.raises(ValueError, match=r"^diverged at round 3; try a smaller lr "
                                         r"\(the models: no longer finite\)$"):
        check_diverged(3, loss=None, **{"the models": torch.tensor([1.0, math.inf])})
    with pytest.raises(ValueError, match=r"\(loss: no longer finite\)$"):
        check_diverged(4, loss=np.array([math.nan]))


def test_check_tensor_messages_and_empty_tensors():
    with pytest.raises(ValueError, match=r"^t must be a floating-point torch.Tensor, "
                                         r"got \[1.0\] \(list\)$"):
        check_tensor("t", [1.0])
    with pytest.raises(ValueError, match=r"^t must be a floating-point torch.Tensor"):
        check_tensor("t", torch.tensor([1, 2]))
    empty = torch.empty(0)
    assert check_tensor("t", empty) is empty
    with pytest.raises(ValueError, match=r"^t must have at least one entry, got an empty tensor$"):
        check_tensor("t", empty, allow_empty=False)
    one = torch.ones(1)
    assert check_tensor("t", one, allow_empty=False) is one
    with pytest.raises(ValueError, match=r"^t must have finite entries only \(no NaN or inf\)$"):
        check_tensor("t", torch.tensor([0.0, math.nan]))


def test_formatters_name_their_parameter_and_switch_to_scientific_at_a_million():
    with pytest.raises(ValueError, match=r"^n_bytes must be a finite number >= 0 and <= the "
                                         r"largest float, got -1$"):
        format_bytes(-1)
    with pytest.raises(ValueError, match=r"^bits_per_s must be a finite number >= 0"):
        format_bps(-1)
    assert format_bytes(999_999 * 2**60) == "999999.0 EiB"
    assert format_bytes(1e6 * 2**60) == "1e+06 EiB"
    assert format_bytes(1.5e6 * 2**60) == "1.5e+06 EiB"


def test_unit_constants_agree_with_the_formatters_and_torch():
    # Binary sizes as format_bytes reads them, decimal rates as format_bps does,
    # and a float32's width from torch itself.
    for constant, text in ((units.KIB, "1.0 KiB"), (units.MIB, "1.0 MiB"), (units.GIB, "1.0 GiB")):
        assert format_bytes(constant) == text and format_bytes(constant - 1) != text
    for constant, text in ((units.KBIT, "1 kbit/s"), (units.MBIT, "1 Mbit/s"),
                           (units.GBIT, "1 Gbit/s")):
        assert format_bps(constant) == text and format_bps(constant - 1) != text
    assert units.FLOAT32_BITS == torch.finfo(torch.float32).bits
    assert units.BITS_PER_BYTE == torch.finfo(torch.float32).bits // torch.tensor(
        0, dtype=torch.float32).element_size()


def test_check_seed_names_seed_unless_told_otherwise():
    assert units.check_seed(2**32 - 1) == 2**32 - 1 and units.check_seed(0) == 0
    with pytest.raises(ValueError, match=r"^seed must be a whole number >= 0 and <= "
                                         r"4,294,967,295, got -1$"):
        units.check_seed(-1)
    with pytest.raises(ValueError, match=r"^shared_seed must be a whole number >= 0"):
        units.check_seed(2**32, "shared_seed")


def test_check_int_refusal_names_the_parameter_and_its_range():
    from dmlbook.units import check_int

    with pytest.raises(ValueError, match=r"^n must be a whole number >= 2 and <= 1,000, got 1001$"):
        check_int("n", 1001, minimum=2, maximum=1000)
    with pytest.raises(ValueError, match=r"^n must be a whole number >= 1, got 2.5$"):
        check_int("n", 2.5)


def test_check_fraction_is_open_and_names_the_parameter():
    from dmlbook.units import check_fraction

    assert check_fraction("f", 0.5) == 0.5
    for value in (0, 1, 1.5):
        with pytest.raises(ValueError, match=rf"^f must be a fraction in \(0, 1\), got {value}$"):
            check_fraction("f", value)
