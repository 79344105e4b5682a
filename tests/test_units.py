import math

import pytest
import torch

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


def test_numpy_scalars_become_python_numbers():
    import numpy as np

    assert units.check_number("x", np.float32(2.5)) == 2.5
    assert type(units.check_number("x", np.float32(2.5))) is float
    assert type(units.check_int("n", np.int64(3))) is int
    assert units.check_int("n", np.float32(8.0)) == 8
    with pytest.raises(ValueError, match="flag must be"):
        units.check_number("flag", np.bool_(True))


def test_upper_bounds_name_the_parameter_and_the_bound():
    with pytest.raises(ValueError, match="rounds must be a whole number >= 1 and <= 100,000"):
        units.check_int("rounds", 10**12, maximum=units.MAX_ROUNDS)
    with pytest.raises(ValueError, match="speed must be a finite number > 0 and <= 1e"):
        units.check_number("speed", 1e300, maximum=units.MAX_BPS)
    assert units.check_int("n", 10**400 - (10**400 - 5), maximum=5) == 5
    with pytest.raises(ValueError, match="n must be"):
        units.check_int("n", 10**400, maximum=5)  # no OverflowError
    with pytest.raises(ValueError, match="seed"):
        units.check_seed(2**32)
    assert units.check_seed(2**32 - 1) == 2**32 - 1


def test_fractions_and_divergence():
    assert units.check_fraction("f", 0.25) == 0.25
    for bad in (0, 1, 2.5, -0.1, math.nan):
        with pytest.raises(ValueError, match=r"f must be a fraction in \(0, 1\)"):
            units.check_fraction("f", bad)
    units.check_diverged(3, loss=1.0, params=[0.0, 2.0])
    with pytest.raises(ValueError, match="diverged at round 3; try a smaller lr"):
        units.check_diverged(3, loss=math.inf)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("where", [0, 1_000, -1])
def test_check_diverged_finds_one_bad_entry_in_a_tensor(dtype, bad, where):
    params = torch.randn(64, 37).to(dtype)
    units.check_diverged(1, params=params)  # all finite: no error
    params.view(-1)[where] = bad
    with pytest.raises(ValueError, match="diverged at round 1.*params: no longer finite"):
        units.check_diverged(1, params=params)


def test_check_diverged_on_empty_and_integer_tensors():
    units.check_diverged(1, a=torch.empty(0), b=torch.arange(5), c=torch.zeros(3, 0))
    with pytest.raises(ValueError, match="c: no longer finite"):
        units.check_diverged(2, c=torch.tensor([1.0, math.nan]).requires_grad_())


def test_batch_size_refusals_word_for_word():
    from dmlbook.units import MAX_EXAMPLES_PER_STEP, check_batch_size
    with pytest.raises(ValueError, match=r"^batch_size must be a whole number >= 1 and "
                                         r"<= 65,536, got 0$"):
        check_batch_size(0)
    assert check_batch_size(MAX_EXAMPLES_PER_STEP // 16, 16) == 65_536
    with pytest.raises(ValueError, match=r"^batch_size must keep nodes x batch_size "
                                         r"\(MAX_EXAMPLES_PER_STEP\) <= 1,048,576, "
                                         r"got 1,048,577$"):
        check_batch_size(MAX_EXAMPLES_PER_STEP // 17 + 1, 17)  # 61,681 x 17
