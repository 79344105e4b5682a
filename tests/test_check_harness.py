"""The harness's report of a failed tensor: where it first differs, and no more."""

import torch

from dmlbook.check import harness
from dmlbook.check.harness import Failure, short


def test_a_matrix_report_shows_the_first_row_that_differs():
    expected = torch.zeros(5, 3)
    actual = expected.clone()
    actual[3, 1] = 1.0
    failure = Failure("case", expected=expected, actual=actual)
    assert failure.expected == "tensor of shape (5, 3), row 3: [0. 0. 0.]"
    assert failure.actual == "tensor of shape (5, 3), row 3: [0. 1. 0.]"


def test_a_long_vector_report_starts_where_it_first_differs():
    expected = torch.arange(100.0)
    actual = expected.clone()
    actual[40] += 0.5
    failure = Failure("case", expected=expected, actual=actual)
    assert failure.expected == ("tensor of shape (100,), from entry 40: "
                                "[40. 41. 42. 43. 44. 45. 46. 47.] ...")
    assert failure.actual == ("tensor of shape (100,), from entry 40: "
                              "[40.5 41. 42. 43. 44. 45. 46. 47. ] ...")
    # A difference the first 8 entries show is shown from the start.
    actual = expected.clone()
    actual[7] = -1.0
    assert Failure("case", expected=expected, actual=actual).actual.startswith(
        "tensor of shape (100,): [ 0. 1. 2. 3. 4. 5. 6. -1.] ...")


def test_values_equal_at_four_digits_are_shown_with_eight():
    expected = torch.tensor([0.123456, 1.0])
    actual = torch.tensor([0.123476, 1.0])
    failure = Failure("case", expected=expected, actual=actual)
    assert failure.expected == "tensor of shape (2,): [0.123456 1. ]"
    assert failure.actual == "tensor of shape (2,): [0.123476 1. ]"
    assert failure.expected != failure.actual


def test_the_search_for_a_difference_is_bounded():
    rows = harness.MAX_ROWS_COMPARED
    expected = torch.zeros(rows + 5, 2)
    actual = expected.clone()
    actual[rows + 1] = 1.0  # past the rows compared: the report shows row 0
    assert harness._first_difference(expected, actual) == (None, 0)
    actual[rows - 1, 1] = 1.0
    assert harness._first_difference(expected, actual) == (rows - 1, 1)
    entries = harness.MAX_ENTRIES_COMPARED
    long_expected = torch.zeros(entries + 10)
    long_actual = long_expected.clone()
    long_actual[entries + 2] = 1.0
    assert harness._first_difference(long_expected, long_actual) == (None, 0)
    long_actual[entries - 1] = 1.0
    assert harness._first_difference(long_expected, long_actual) == (None, entries - 1)


def test_shapes_that_differ_or_scalars_are_shown_from_the_start():
    assert harness._first_difference(torch.zeros(3), torch.ones(4)) == (None, 0)
    assert harness._first_difference(torch.tensor(1.0), torch.tensor(2.0)) == (None, 0)
    assert harness._first_difference(torch.zeros(3), [0, 0, 1]) == (None, 0)
    assert short(torch.arange(20.0), start=30) == (
        "tensor of shape (20,): [0. 1. 2. 3. 4. 5. 6. 7.] ...")  # out of range: the start
    assert short(torch.zeros(2, 3), row=1) == "tensor of shape (2, 3), row 1: [0. 0. 0.]"
