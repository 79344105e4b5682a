"""The harness and its display: where a failed tensor first differs, output, limits."""

import sys
import time

import numpy as np
import pytest
import torch

from dmlbook.check import display, harness
from dmlbook.check.display import short
from dmlbook.check.harness import Failure


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


def test_a_report_searches_with_the_tolerance_of_the_comparison_that_failed():
    import pytest

    expected = torch.arange(100.0, dtype=torch.float64)
    actual = expected.clone()
    actual[10] += 5e-5  # within a tolerance of 1e-4, beyond the default 1e-6
    actual[40] += 0.5
    failure = Failure("case", expected=expected, actual=actual, atol=1e-4, rtol=1e-5)
    assert failure.actual.startswith("tensor of shape (100,), from entry 40: [40.5")
    assert Failure("case", expected=expected, actual=actual).actual.startswith(
        "tensor of shape (100,), from entry 10: ")
    # A check as strict as the merge's (atol 1e-12) shows a difference of 1e-9 where it
    # is, although the default tolerance would see none there.
    zeros = torch.zeros(100, dtype=torch.float64)
    tight = zeros.clone()
    tight[30] = 1e-9
    with pytest.raises(Failure) as caught:
        harness.tensor_result("case", tight, zeros, [], [], "hint", atol=1e-12)
    assert caught.value.expected.startswith("tensor of shape (100,), from entry 30: ")
    assert caught.value.actual == ("tensor of shape (100,), from entry 30: "
                                   "[1.e-09 0.e+00 0.e+00 0.e+00 0.e+00 0.e+00 0.e+00 0.e+00] ...")
    with pytest.raises(Failure) as caught:
        harness.tensor_result("case", actual, expected, [], [("a named slip", actual, "why")],
                              "hint", atol=1e-4)
    assert (caught.value.mistake, caught.value.actual[:34]) == (
        "a named slip", "tensor of shape (100,), from entry")
    assert "from entry 40" in caught.value.actual


def test_values_equal_at_four_digits_are_shown_with_eight():
    expected = torch.tensor([0.123456, 1.0])
    actual = torch.tensor([0.123476, 1.0])
    failure = Failure("case", expected=expected, actual=actual)
    assert failure.expected == "tensor of shape (2,): [0.123456 1. ]"
    assert failure.actual == "tensor of shape (2,): [0.123476 1. ]"
    assert failure.expected != failure.actual


def test_the_search_for_a_difference_is_bounded():
    rows = display.MAX_ROWS_COMPARED
    expected = torch.zeros(rows + 5, 2)
    actual = expected.clone()
    actual[rows] = 1.0  # the first row past the bound: the report shows the start
    assert display._first_difference(expected, actual) == (None, 0)
    actual[rows - 1, 1] = 1.0  # the last row within it
    assert display._first_difference(expected, actual) == (rows - 1, 1)
    entries = display.MAX_ENTRIES_COMPARED
    long_expected = torch.zeros(entries + 10)
    long_actual = long_expected.clone()
    long_actual[entries] = 1.0
    assert display._first_difference(long_expected, long_actual) == (None, 0)
    long_actual[entries - 1] = 1.0
    assert display._first_difference(long_expected, long_actual) == (None, entries - 1)
    # The entries are counted over all rows: a difference past them is not searched for.
    wide = torch.zeros(3, entries // 2 + 1)
    wide_actual = wide.clone()
    wide_actual[2, 0] = 1.0
    assert display._first_difference(wide, wide_actual) == (None, 0)
    wide_actual[1, 5] = 1.0
    assert display._first_difference(wide, wide_actual) == (1, 5)


def test_results_that_cannot_be_compared_are_shown_from_the_start():
    from dmlbook import check

    meta = check.fedavg(lambda s, c: torch.zeros(3, dtype=torch.bool, device="meta"))
    assert meta.feedback.splitlines()[3:] == [
        "  got:      a Tensor", "Hint (not a tensor): return the result as a float tensor."]
    assert display._first_difference(torch.zeros(2, dtype=torch.complex64),
                                     torch.ones(2, dtype=torch.complex64)) == (None, 0)
    slab = torch.zeros(2, 3, 4)
    other = slab.clone()
    other[1, 2, 3] = 1.0  # a row of a 3-d result is x[i] flattened
    assert display.shown_pair(slab, other) == (
        "tensor of shape (2, 3, 4), row 1, from entry 11: [0.]",
        "tensor of shape (2, 3, 4), row 1, from entry 11: [1.]")
    assert short(torch.zeros(0, 3)) == "tensor of shape (0, 3): []"
    assert short(torch.zeros(3, device="meta")) == "a Tensor"
    assert short(10**5000) == "an int of more than 4,300 digits"


def test_shapes_that_differ_or_scalars_are_shown_from_the_start():
    assert display._first_difference(torch.zeros(3), torch.ones(4)) == (None, 0)
    assert display._first_difference(torch.tensor(1.0), torch.tensor(2.0)) == (None, 0)
    assert display._first_difference(torch.zeros(3), [0, 0, 1]) == (None, 0)
    assert short(torch.arange(20.0), start=30) == (
        "tensor of shape (20,): [0. 1. 2. 3. 4. 5. 6. 7.] ...")  # out of range: the start
    assert short(torch.zeros(2, 3), row=1) == "tensor of shape (2, 3), row 1: [0. 0. 0.]"


# ---------------------------------------------------------------------------
# Found by hand-made mutants (benchmarks/README.md, "Mutation testing")


def test_short_printed_output_is_shown_whole_without_a_cut_note():
    from dmlbook import check
    from dmlbook.check import reference

    def says_hi(*args):
        print("hi")
        return reference.participants(*args)

    feedback = check.participants(says_hi).feedback
    assert "Your function printed:\nhi" in feedback and "first " not in feedback


def test_a_function_that_returns_the_ellipsis_is_an_empty_stub():
    from dmlbook import check

    result = check.download_cost(lambda *args: ...)
    assert result.mistake == "an empty stub"
    assert result.feedback.splitlines()[2:] == [
        "  expected: a value", "  got:      Ellipsis",
        "Hint (an empty stub): your function returned nothing: replace `...` by the body and "
        "`return` the result."]


def test_a_checks_network_takes_exactly_its_limit_then_stops_the_sender():
    from dmlbook.check.network import Network

    net = Network(limit=3)
    for _ in range(3):
        net.send(0, 1, torch.zeros(2))
    assert net.count == 3
    try:
        net.send(0, 1, torch.zeros(2))
    except Failure as failure:
        assert (failure.case, failure.expected, failure.mistake) == (
            "the messages your function sent", "at most 3", "messages")
    else:
        raise AssertionError("the fourth message went through a network of limit 3")
    assert net.count == 3 and len(net.messages) == 3


def test_a_runaway_sender_inside_a_check_is_stopped_by_the_count_not_the_clock(monkeypatch):
    from dmlbook import check
    from dmlbook.check import network

    monkeypatch.setattr(network, "MAX_CHECK_MESSAGES", 1000)

    def floods(chunks):
        while True:
            check.send(0, 1, chunks[0][0])

    result = check.ring_allreduce(floods, time_limit_s=60)
    assert result.mistake == "messages"
    assert result.feedback.splitlines()[1:4] == [
        "Case: the messages your function sent", "  expected: at most 1,000", "  got:      more"]


def test_sending_something_else_than_a_tensor_is_the_students_error():
    from dmlbook import check

    def sends_a_list(chunks):
        check.send(0, 1, [1.0, 2.0])
        return chunks

    assert check.ring_allreduce(sends_a_list).feedback.splitlines()[-1] == (
        "Hint (an error): your function raised TypeError: send(src, dst, tensor) sends a "
        "torch tensor, got [1.0, 2.0]")


def test_a_runaway_senders_hint():
    from dmlbook.check.network import Network

    net = Network(limit=1)
    net.send(0, 1, torch.zeros(1))
    try:
        net.send(0, 1, torch.zeros(1))
    except Failure as failure:
        assert (failure.actual, failure.hint) == (
            "more", "your function kept sending: each phase takes n - 1 steps.")
    else:
        raise AssertionError("a second message went through a network of limit 1")
    assert Network().limit == 100_000 and not Network().bounded


# ---------------------------------------------------------------------------
# Found by the mutation sample of harness.py


def test_the_unit_slips_and_their_factors():
    factors = [factor for factor, _, _ in harness.unit_mistakes()]
    assert factors == [8, 1 / 8, 2**30 / 10**9, 10**9 / 2**30, 1024 / 1000, 1000 / 1024]
    assert [m for _, m, _ in harness.unit_mistakes()] == ["bits vs bytes"] * 2 + [
        "10^9 vs 2^30"] * 4


def test_values_that_cannot_be_shown_whole():
    assert short(10**30) == "1" + "0" * 30  # up to 10^30 written out
    assert short(10**30 + 1) == "an int of 31 digits"
    assert short(10**1000) == "an int of 1,001 digits"
    assert short([[1, 2, 3, 4, 5, 6, 7]]) == "[[1, 2, 3, 4, 5, 6, ...]]"
    assert short(list(range(7))) == "list of length 7"
    assert short("x" * 301) == "x" * 300 + " ..."


def test_a_failure_without_a_hint_has_no_hint_line():
    text = harness.report_failure("c", Failure("a case", expected=1, actual=2), ["hand"])
    assert text.splitlines() == ["✗ c: not yet.", "Case: a case", "  expected: 1",
                                 "  got:      2", "Already passed: hand."]


def test_a_stage_without_a_summary_is_named_by_its_label():
    result = harness.stages("c", lambda: None, lambda fn: "h", lambda fn: None,
                            lambda fn: "s")
    assert result.passed and result.feedback == "✓ c: passed. h; random; s."


def test_printed_output_comes_on_its_own_lines_after_the_verdict():
    from dmlbook import check
    from dmlbook.check import reference

    printed = []

    def says_hi_once(*args):
        if not printed:  # once, in the first case only
            print("hi")
            printed.append(True)
        return reference.participants(*args)

    lines = check.participants(says_hi_once).feedback.splitlines()
    assert lines[0].startswith("✓ participants: passed.")
    assert lines[1:] == ["Your function printed:", "hi"]


def test_the_capture_keeps_exactly_its_limit():
    capture = harness._Capture()
    capture.write("x" * (harness.MAX_OUTPUT_CHARS - 1))
    capture.write("ab")
    assert "".join(capture.kept) == "x" * (harness.MAX_OUTPUT_CHARS - 1) + "a"
    assert capture.total == harness.MAX_OUTPUT_CHARS + 1
    assert capture.summary().startswith(
        f"Your function printed (first 600 of 601 characters):\n")
    # Once full, the capture only counts: a million more prints keep nothing more.
    pieces = len(capture.kept)
    for _ in range(1000):
        capture.write("more")
    assert len(capture.kept) == pieces and capture.total == harness.MAX_OUTPUT_CHARS + 4001


def test_waiting_is_allowed_longer_than_computing():
    """The limit is on CPU time; waiting (sleep, I/O) gets WAIT_FACTOR times as long."""
    from dmlbook.check import reference

    def waits_then_answers(*args):
        time.sleep(1.5)  # over the 1 s of computing, well within the 6 s of waiting
        return reference.participants(*args)

    result = harness.run("participants", waits_then_answers,
                         [("wait", lambda fn: str(fn(10**6, 32, 10**8, 60)))], time_limit_s=1)
    assert result.passed, result.feedback


def test_a_report_in_jupyter_is_green_or_orange():
    from dmlbook import check
    from dmlbook.check import reference

    assert "border-left:4px solid #2e7d32" in check.participants(
        reference.participants)._repr_html_()
    failed = check.participants(lambda *a: 0)._repr_html_()
    assert "background:#fff3e0;border-left:4px solid #ef6c00" in failed


def test_a_list_that_is_not_numbers_is_not_a_tensor():
    from dmlbook import check

    got = check.fedavg(lambda s, c: ["x"]).feedback.splitlines()
    assert got[-1] == "Hint (not a tensor): return the result as a torch tensor."


def test_values_exactly_at_the_display_limits_are_shown_whole():
    limit = display.MAX_VALUE_CHARS
    assert short("x" * limit) == "x" * limit
    assert short("x" * (limit + 1)) == "x" * limit + " ..."
    assert short(list(range(6))) == "[0, 1, 2, 3, 4, 5]"  # up to 6 items written out

    class Exact:
        def __repr__(self):
            return "y" * limit

    assert short(Exact()) == "y" * limit
    # reprlib shortens each part of a container; the whole is cut at the limit too.
    long_dict = {i: "z" * (2 * limit) for i in range(3)}
    assert short(long_dict) == display._repr.repr(long_dict)[:limit] + " ..."
    assert display._an("int") == "an int" and display._an("Tensor") == "a Tensor"
    assert display._an("Ellipsis") == "an Ellipsis" and display._an("list") == "a list"


def test_a_report_shows_numbers_far_below_the_largest_as_zero_by_default():
    assert short(torch.tensor([1.0, 1e-9])) == "tensor of shape (2,): [1. 0.]"
    assert short(torch.tensor([1.0, 1e-9]), suppress_small=False) == \
        "tensor of shape (2,): [1.e+00 1.e-09]"


def test_a_report_shows_from_the_first_difference_only_past_the_first_eight():
    values = torch.arange(20.0)
    assert ", from entry 8:" in short(values, start=8)
    assert "from entry" not in short(values, start=7)
    assert "from entry" not in short(torch.arange(10.0), start=10)  # past the end: the start


def test_the_search_uses_the_last_entry_of_its_budget(monkeypatch):
    monkeypatch.setattr(display, "MAX_ENTRIES_COMPARED", 7)
    expected = torch.zeros(3, 3)
    actual = expected.clone()
    actual[2, 0] = 1.0  # rows 0 and 1 use 6 of the 7 entries; the 7th finds it
    assert display._first_difference(expected, actual) == (2, 0)


def test_nans_in_the_same_place_are_not_where_results_differ():
    nan = float("nan")
    assert display._first_difference(torch.tensor([nan, 1.0]), torch.tensor([nan, 2.0])) \
        == (None, 1)


def test_the_search_for_a_difference_uses_a_tolerance_of_one_in_a_million():
    zeros = torch.zeros(2, dtype=torch.float64)
    assert display._first_difference(zeros, torch.tensor([0.0, 1.5e-6], dtype=torch.float64)) \
        == (None, 1)
    assert display._first_difference(zeros, torch.tensor([0.0, 0.5e-6], dtype=torch.float64)) \
        == (None, 0)


def _failure(convert, value, **kwargs) -> Failure:
    with pytest.raises(Failure) as caught:
        convert(value, "case", 1, **kwargs)
    return caught.value


def test_a_bool_is_not_a_number_for_either_conversion():
    for convert in (harness.as_int, harness.as_float):
        for value in (True, np.bool_(False), "1", b"1"):
            assert _failure(convert, value).mistake == "not a number", (convert, value)


def test_conversion_hints_name_the_number_and_its_type():
    assert _failure(harness.as_int, 2.5).hint == "return the number as an int."
    assert _failure(harness.as_int, "2", what="the count").hint == "return the count as an int."
    assert _failure(harness.as_float, "2").hint == "return the number as a float."

    class Unconvertible(int):  # an Integral whose int() fails
        def __int__(self):
            raise ValueError("no")

        __index__ = __int__

    failure = _failure(harness.as_int, Unconvertible(3))
    assert (failure.mistake, failure.hint) == ("not a number", "return the number as an int.")

    class Unfloatable(float):  # a Real whose float() fails
        def __float__(self):
            raise ValueError("no")

    failure = _failure(harness.as_float, Unfloatable(2.0))
    assert (failure.mistake, failure.hint) == ("not a number", "return the number as a float.")


def test_a_report_names_every_input_changed_in_place():
    with pytest.raises(Failure) as caught:
        harness.tensor_result("case", torch.ones(2), torch.ones(2), ["x", "W"], [], "hint")
    assert caught.value.actual == "your function changed x and W"
    assert caught.value.mistake == "changed its inputs in place"


def test_sys_exit_names_its_code_and_what_to_do_instead():
    def exits(*args):
        raise SystemExit(3)

    with pytest.raises(Failure) as caught:
        harness.call(exits, "case")
    assert caught.value.hint == "your function called sys.exit(3); return a value instead."


def test_the_time_limit_message_gives_both_limits():
    result = harness._timed_out("participants", 2)
    assert result.feedback == (
        "✗ participants: your function did not return within 2 s (the check's time limit: "
        f"2 s of computing, or {2 * harness.WAIT_FACTOR} s of waiting), so the check "
        "stopped it. Look for a loop that never ends.")
    assert (result.passed, result.mistake) == (False, "time limit")


def test_a_result_made_without_a_clock_took_no_time():
    assert harness.CheckResult("x", True, "✓ x").seconds == 0.0


def test_a_time_up_as_the_stages_end_keeps_their_verdict(monkeypatch):
    """The limit can run out after the last stage returned, while the kernel's state
    is restored: the verdict is the stages', not "did not return"."""
    real_restore = harness._restore

    def restore_then_alarm(state):
        real_restore(state)
        raise harness.TimeUp()

    monkeypatch.setattr(harness, "_restore", restore_then_alarm)
    result = harness.run("demo", lambda: 1, [("one case", lambda fn: "it returned")])
    assert (result.passed, result.feedback) == (True, "✓ demo: passed. it returned.")
    # With no verdict yet, a time-up is the time limit's.
    monkeypatch.setattr(harness, "_stages", lambda *args: (_ for _ in ()).throw(harness.TimeUp()))
    timed_out = harness.run("demo", lambda: 1, [])
    assert (timed_out.passed, timed_out.mistake) == (False, "time limit")


def _raised(fn, *args) -> Failure:
    with pytest.raises(Failure) as caught:
        fn(*args)
    return caught.value


def _raises_value_error(*args):
    raise ValueError("bad input")


LIKE = torch.zeros(2)
# Every way a conversion or a call fails, and exactly what the student reads: (mistake, hint).
FAILURE_TEXTS = [
    (lambda: harness.call(_raises_value_error, "case"),
     ("an error", "your function raised ValueError: bad input")),
    (lambda: harness.as_int(object(), "case", 2),
     ("not a number", "return the number as an int.")),
    (lambda: harness.as_int(2.0, "case", 2),
     ("not a whole number", "the number comes in whole numbers: return an int (int(...)).")),
    (lambda: harness.as_int(2.0, "case", 3),
     ("not a whole number", "return the number as an int.")),
    (lambda: harness.as_float(float("inf"), "case", 2.0),
     ("not a number", "return the number as a finite number.")),
    (lambda: harness.as_float([1.0], "case", 2.0),
     ("not a number", "return the number as a float.")),
    (lambda: harness.as_tensor(object(), "case", LIKE),
     ("not a tensor", "return the result as a torch tensor.")),
    (lambda: harness.as_tensor(torch.tensor([True, False]), "case", LIKE, name="x"),
     ("not a tensor", "return x as a float tensor.")),
    (lambda: harness.tensor_result("case", 3.0, LIKE, [], [], "hint"),
     ("not a tensor", "return a torch tensor.")),
    (lambda: harness.tensor_result("case", torch.zeros(3), LIKE, [], [], "hint"),
     ("wrong shape", "return a tensor of shape (2,).")),
    (lambda: harness.tensor_result("case", torch.ones(2), LIKE, [], [], "the default"),
     ("wrong value", "the default")),
    (lambda: harness.shaped(torch.zeros(2, 1), "case", LIKE),
     ("wrong shape", "return a tensor of shape (2,).")),
]


@pytest.mark.parametrize("fail, text", FAILURE_TEXTS)
def test_each_failure_says_exactly_what_went_wrong(fail, text):
    failure = _raised(fail)
    assert (failure.mistake, failure.hint) == text


def test_a_raised_error_shows_no_values():
    # The function returned nothing: there is nothing to set against the expected value.
    assert _raised(harness.call, _raises_value_error, "case").show_values is False


def test_the_capture_says_it_is_writable():
    # Libraries ask before they write (io.TextIOBase answers no unless told).
    with harness.isolated(0) as capture:
        if sys.stdout.writable():
            print("asked first")
    assert "asked first" in capture.summary()


def test_passing_something_else_than_a_function_names_the_mistake():
    result = harness.run("participants", 2203, [("hand", lambda fn: "never run")])
    assert (result.passed, result.mistake) == (False, "not a function")
    assert result.feedback == ("✗ participants: pass your function itself, e.g. "
                               "check.participants(my_function), not 2203.")
