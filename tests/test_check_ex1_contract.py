"""Workbook 1's checks: the feedback each kind of wrong answer gets, word for word.

The mutation run of check/ex1_participants.py (benchmarks/README.md,
"Mutation testing") found the verdicts guarded but not what a student reads:
which mistake is named, the hint under it, the case it failed on, and the
summary of a pass. Each wrong solution below is one a student writes; the test
pins the last line of its feedback (the named mistake and its hint) and the
case it is caught on.
"""

import math
import re

import pytest

from dmlbook import check
from dmlbook.check import ex1_participants, reference

SHEET_DOWNLOAD = ("participants(n_params=85098, bits_per_param=32, link_bps=1000000000, "
                  "time_limit_s=60), the sheet's download link (1 Gbit/s)")

PARTICIPANTS = [
    ("a float", lambda n, b, link, t: link * t / (n * b), "rounding",
     "a participant gets the whole model in time or not at all: return a whole number, "
     "rounded down (int(... // ...))."),
    ("rounded to the nearest", lambda n, b, link, t: round(link * t / (n * b)), "rounding",
     "off by one: round down (floor), not up or to the nearest; a model that fits exactly "
     "still counts.", "16-bit parameters"),
    ("rounded up", lambda n, b, link, t: math.ceil(link * t / (n * b)), "rounding",
     "off by one: round down (floor), not up or to the nearest; a model that fits exactly "
     "still counts."),
    ("no time limit", lambda n, b, link, t: link // (n * b), "forgot the time limit",
     "the link moves link_bps * time_limit_s bits within the limit."),
    ("divided by the time", lambda n, b, link, t: int(link / t // (n * b)),
     "divided by the time limit", "multiply the rate by the time limit, do not divide by it."),
    ("time twice", lambda n, b, link, t: int(link * t * t // (n * b)),
     "time limit counted twice",
     "the link moves link_bps * time_limit_s bits: multiply by the time limit once."),
    ("no bits", lambda n, b, link, t: link * t // n, "forgot bits per parameter",
     "a model is n_params * bits_per_param bits."),
    ("bits twice", lambda n, b, link, t: link * t // (n * b * b), "forgot bits per parameter",
     "a model is n_params * bits_per_param bits."),
    ("upside down", lambda n, b, link, t: n * b / (link * t), "fraction upside down",
     "participants = link_bps * time_limit_s / model bits."),
    ("bytes", lambda n, b, link, t: int(link * t // (n * b / 8)), "bits vs bytes",
     "one byte is 8 bits; check which quantities are in bits and which in bytes, and "
     "convert exactly once."),
    ("an unrelated int", lambda n, b, link, t: 7, "wrong value",
     "n participants fit when n * n_params * bits_per_param <= link_bps * time_limit_s."),
    ("an unrelated float", lambda n, b, link, t: 7.5, "wrong value",
     "return the number of participants as an int."),
    # A float that rounds to the answer is a rounding slip, not a wrong value.
    ("a float just under", lambda n, b, link, t: link * t / (n * b) - 0.9, "rounding",
     "a participant gets the whole model in time or not at all: return a whole number, "
     "rounded down (int(... // ...))."),
    # The right count as a float: only its type is wrong.
    ("the right count as a float", lambda n, b, link, t: float(link * t // (n * b)),
     "not a whole number",
     "the number of participants comes in whole numbers: return an int (int(...))."),
]


@pytest.mark.parametrize("label, fn, mistake, hint, case",
                         [p + (None,) * (5 - len(p)) for p in PARTICIPANTS],
                         ids=[p[0] for p in PARTICIPANTS])
def test_participants_names_the_mistake_and_its_hint(label, fn, mistake, hint, case):
    # The first case that tells it apart: the sheet's download link, or the one named.
    result = check.participants(fn)
    assert not result.passed and result.mistake == mistake
    lines = result.feedback.splitlines()
    assert lines[0] == "✗ participants: not yet."
    if case:
        assert lines[1].startswith("Case: participants(") and lines[1].endswith(f", {case}")
    else:
        assert lines[1] == f"Case: {SHEET_DOWNLOAD}"
    assert lines[-1] == f"Hint ({mistake}): {hint}"


def test_participants_right_on_the_sheet_but_wrong_elsewhere_fails_on_the_case_it_misses():
    def exact_only_on_the_sheet(n, b, link, t):
        return reference.participants(n, b, link, t) if b == 32 else 0

    result = check.participants(exact_only_on_the_sheet)
    assert result.mistake == "wrong value"
    assert result.feedback.splitlines()[1] == (
        "Case: participants(n_params=85098, bits_per_param=16, link_bps=100000000, "
        "time_limit_s=60), 16-bit parameters")


def test_a_pass_summarises_every_stage():
    assert check.participants(reference.participants).feedback == (
        "✓ participants: passed. 5 hand-worked cases; 40 seeded random cases over every "
        "parameter, rounded down correctly; dmlbook.bandwidth's transfer times agree (one "
        "more participant would not fit).")
    assert check.binding_link(reference.binding_link).feedback == (
        "✓ binding_link: passed. 4 hand-worked cases; 40 seeded random cases agree with "
        "dmlbook.bandwidth.max_participants, ties included; with one more participant the "
        "upload link would need 60.02 s > 60 s.")


def test_hand_cases_are_the_sheets_and_their_labels():
    labels = [label for _, label in ex1_participants.HAND]
    assert labels == ["the sheet's download link (1 Gbit/s)",
                      "the sheet's upload link (100 Mbit/s)", "16-bit parameters",
                      "a model that fits exactly twice", "a model too big for the link: 0"]
    assert [ex1_participants._expected(*args) for args, _ in ex1_participants.HAND] == [
        reference.participants(*args) for args, _ in ex1_participants.HAND]
    assert [reference.participants(*args) for args, _ in ex1_participants.HAND[3:]] == [2, 0]
    assert ex1_participants.HAND[2][0][1] == 16


def _pair(n, link):
    return lambda *args: (n(*args), link(*args))


def _counts(n_params, bits, down, up, t):
    return (reference.participants(n_params, bits, down, t),
            reference.participants(n_params, bits, up, t))


BINDING = [
    ("an int", lambda *args: reference.binding_link(*args)[0], "wrong shape",
     'return a pair: (participants, "download" or "upload").', "the sheet's links"),
    ("the larger count", lambda *a: (max(_counts(*a)), reference.binding_link(*a)[1]),
     "max instead of min", "every participant needs both links: the smaller count wins.",
     "the sheet's links"),
    ("the sum", lambda *a: (sum(_counts(*a)), reference.binding_link(*a)[1]), "links added",
     "the two links work at the same time, each for every participant: take the smaller "
     "count, not the sum.", "the sheet's links"),
    ("twice the smaller", lambda *a: (2 * min(_counts(*a)), reference.binding_link(*a)[1]),
     "links added", "the two links work at the same time, each for every participant: take "
     "the smaller count, not the sum.", "the sheet's links"),
    ("an unrelated count", lambda *a: (3, reference.binding_link(*a)[1]), "wrong value",
     "count the participants each link serves, then take the smaller.", "the sheet's links"),
    ("a misspelt link", lambda *a: (reference.binding_link(*a)[0], "up"), "not a link name",
     'name the binding link "download" or "upload".', "the sheet's links"),
    ("the other link", lambda *a: (reference.binding_link(*a)[0],
                                   {"upload": "download", "download": "upload"}[
                                       reference.binding_link(*a)[1]]),
     "wrong link", "the binding link is the one that serves fewer participants.",
     "the sheet's links"),
    ("download on a tie", lambda *a: (reference.binding_link(*a)[0],
                                      "download" if len(set(_counts(*a))) == 1
                                      else reference.binding_link(*a)[1]),
     "wrong link", 'on a tie, name "upload".', "two equal links: a tie"),
]


@pytest.mark.parametrize("label, fn, mistake, hint, case", BINDING, ids=[b[0] for b in BINDING])
def test_binding_link_names_the_mistake_and_its_hint(label, fn, mistake, hint, case):
    result = check.binding_link(fn)
    assert not result.passed and result.mistake == mistake
    lines = result.feedback.splitlines()
    assert lines[0] == "✗ binding_link: not yet."
    assert re.fullmatch(r"Case: binding_link\(n_params=\d+, bits_per_param=\d+, download_bps=\d+, "
                        rf"upload_bps=\d+, time_limit_s=\d+\), {re.escape(case)}", lines[1])
    if case == "the sheet's links":
        assert lines[1] == ("Case: binding_link(n_params=85098, bits_per_param=32, "
                            "download_bps=1000000000, upload_bps=100000000, time_limit_s=60), "
                            "the sheet's links")
    assert lines[-1] == f"Hint ({mistake}): {hint}"


def test_an_answer_wrong_only_on_exact_fits_fails_on_the_exact_fit():
    # ceil(x) - 1 is floor(x) except when the models fit exactly.
    result = check.participants(lambda n, b, link, t: math.ceil(link * t / (n * b)) - 1)
    assert result.mistake == "rounding"
    assert result.feedback.splitlines()[1].endswith(", a model that fits exactly twice")


def test_an_answer_that_never_says_zero_fails_on_the_model_too_big():
    result = check.participants(lambda n, b, link, t: max(1, reference.participants(n, b, link, t)))
    assert result.feedback.splitlines()[1].endswith(", a model too big for the link: 0")


def test_random_cases_cover_every_parameters_range():
    from dmlbook.check.harness import rng_for

    rng = rng_for("participants")
    cases = [ex1_participants.random_args(rng) for _ in range(40)]
    n_params, bits, links, times = zip(*cases)
    assert set(bits) == {1, 2, 4, 8, 16, 32, 64}
    assert min(n_params) >= 1 and max(n_params) < 10**8 and max(n_params) > 5 * 10**7
    assert min(n_params) < 10**7
    magnitudes = {next(m for m in (10**8, 10**6, 10**5) if link % m == 0 and link // m < 10**4)
                  for link in links}
    assert magnitudes == {10**5, 10**6, 10**8}
    assert min(times) >= 1 and max(times) < 3600 and max(times) > 1800 and min(times) < 600


def test_participants_calls_the_answer_once_a_case_and_labels_the_random_ones():
    calls = []

    def counted(*args):
        calls.append(args)
        return reference.participants(*args)

    assert check.participants(counted).passed
    # 5 hand-worked cases, 40 random ones, the simulator's 3.
    assert len(calls) == 5 + 40 + 3
    hand = {args for args, _ in ex1_participants.HAND}

    def wrong_off_the_sheet(*args):
        return reference.participants(*args) + (tuple(args) not in hand)

    result = check.participants(wrong_off_the_sheet)
    assert result.feedback.splitlines()[1].endswith(", random case 1 of 40")


def test_the_simulator_stage_reports_a_count_the_simulator_does_not_confirm(monkeypatch):
    # The count agrees with the check's formula before this stage, so only a
    # simulator that disagrees can fail it: here one whose uploads take 1 s longer.
    real = ex1_participants.transfer_times

    def slower(*args, **kwargs):
        times = real(*args, **kwargs)
        return times._replace(upload_s=times.upload_s + 1) if hasattr(times, "_replace") \
            else type(times)(**{**vars(times), "upload_s": times.upload_s + 1})

    monkeypatch.setattr(ex1_participants, "transfer_times", slower)
    result = check.participants(reference.participants)
    assert result.mistake == "wrong value"
    assert result.feedback.splitlines() == [
        "✗ participants: not yet.",
        "Case: dmlbook.bandwidth.transfer_times with your 22033 participants, the sheet's "
        "download link (1 Gbit/s)",
        "  expected: <= 60 s, and > 60 s for one more",
        "  got:      60.9989 s, and 61.0016 s for one more",
        "Hint (wrong value): the count must fill the link.",
        "Already passed: 5 hand-worked cases; 40 seeded random cases over every parameter, "
        "rounded down correctly."]


def test_binding_link_shows_the_expected_pair():
    result = check.binding_link(lambda *args: (1, "upload"))
    assert result.feedback.splitlines()[2:4] == ["  expected: (2203, 'upload')",
                                                 "  got:      (1, 'upload')"]


def test_binding_link_random_cases_cover_ties_and_both_faster_links():
    calls = []

    def recording(*args):
        calls.append(args)
        return reference.binding_link(*args)

    assert check.binding_link(recording).passed
    assert len(calls) == 4 + 40 + 1  # hand-worked, random, the simulator's
    random_cases = calls[4:44]
    ratios = [up / down for _, _, down, up, _ in random_cases]
    assert sum(r == 1 for r in ratios) == 8  # every fifth case is a tie
    assert {round(r, 6) for r in ratios if r != 1} == {0.1, 0.5, 2, 10}


def test_binding_link_names_links_added_on_twice_either_link():
    # Twice the download count (the larger on the sheet's links) is a sum of two
    # equal links too.
    def twice_the_download(n_params, bits, down, up, t):
        return 2 * reference.participants(n_params, bits, down, t), "upload"

    result = check.binding_link(twice_the_download)
    assert result.mistake == "links added"
    assert result.feedback.splitlines()[1].endswith(", the sheet's links")


def test_binding_link_asks_for_an_int_count():
    result = check.binding_link(lambda *args: (2203.5, "upload"))
    assert result.feedback.splitlines()[-1] == (
        "Hint (not a whole number): return the number of participants as an int.")


def test_binding_link_tries_the_links_the_other_way_round():
    def always_upload(n_params, bits, down, up, t):
        return reference.binding_link(n_params, bits, down, up, t)[0], "upload"

    result = check.binding_link(always_upload)
    assert result.mistake == "wrong link"
    assert result.feedback.splitlines()[1] == (
        "Case: binding_link(n_params=85098, bits_per_param=32, download_bps=100000000, "
        "upload_bps=1000000000, time_limit_s=60), the links the other way round")


def test_hint_names_the_mistake_from_the_formula_a_student_floored():
    hint = ex1_participants._hint
    # 5,400 bit/s for 3,600 s, a 1-bit model: divided by the time, 1.5 floors to 1.
    assert hint((1, 1, 5400, 3600), 19_440_000, 1)[0] == "divided by the time limit"
    # Where that count floors to 0, a 0 is no evidence of it.
    assert hint((1, 1, 1800, 3600), 6_480_000, 0)[0] == "wrong value"
    # Upside down even where the right count is 0.
    assert hint((10**6, 32, 10**6, 1), 0, 32.0)[0] == "fraction upside down"


def test_a_float_count_that_rounds_up_is_still_a_rounding_slip():
    # Whole numbers on the sheet's links; from the 16-bit case (4,406.7) a float.
    def float_for_16_bits(n, b, link, t):
        return link * t // (n * b) if b == 32 else link * t / (n * b)

    result = check.participants(float_for_16_bits)
    assert result.mistake == "rounding"
    assert result.feedback.splitlines()[1].endswith(", 16-bit parameters")


def test_a_count_that_is_not_a_number_gets_the_conversion_hint():
    result = check.participants(lambda *args: "22033")
    assert result.mistake == "not a number"
    assert result.feedback.splitlines()[-1] == (
        "Hint (not a number): return the number of participants as an int.")


def test_random_links_span_their_multipliers():
    from dmlbook.check.harness import rng_for

    rng = rng_for("participants")
    links = [ex1_participants.random_args(rng)[2] for _ in range(40)]
    assert max(links) > 10**11  # multipliers up to 9,999 of 10**8 bit/s


def test_binding_link_labels_its_hand_and_random_cases():
    def wrong_on_fast_links(n_params, bits, down, up, t):
        n, link = reference.binding_link(n_params, bits, down, up, t)
        return n + (max(down, up) >= 10**10), link

    assert check.binding_link(wrong_on_fast_links).feedback.splitlines()[1].endswith(
        ", a bigger model on faster links")
    hand = {(85098, 32, 10**9, 10**8, 60), (85098, 32, 10**8, 10**9, 60),
            (1000, 8, 16_000, 16_000, 1)}

    def wrong_off_the_hand_cases(*args):
        n, link = reference.binding_link(*args)
        return n + (tuple(args) not in hand and max(args[2], args[3]) < 10**10), link

    assert check.binding_link(wrong_off_the_hand_cases).feedback.splitlines()[1].endswith(
        ", random case 1 of 40")


def test_binding_link_simulator_stage_reports_a_link_it_does_not_confirm(monkeypatch):
    real = ex1_participants.transfer_times

    def instant_uploads(*args, **kwargs):  # so the download overruns first
        times = real(*args, **kwargs)
        return type(times)(**{**vars(times), "upload_s": 0.0})

    monkeypatch.setattr(ex1_participants, "transfer_times", instant_uploads)
    lines = check.binding_link(reference.binding_link).feedback.splitlines()
    assert lines[:5] == [
        "✗ binding_link: not yet.",
        "Case: dmlbook.bandwidth.transfer_times with 2204 participants",
        "  expected: download over the limit",
        "  got:      your upload",
        "Hint (wrong link): the binding link is the one that overruns first."]


def test_binding_link_simulator_stage_names_its_case_for_a_raise_or_a_float():
    calls = []

    def changes_on_the_last_call(*args):
        calls.append(args)
        if len(calls) == 45:
            return 2203.5, "upload"
        return reference.binding_link(*args)

    lines = check.binding_link(changes_on_the_last_call).feedback.splitlines()
    assert lines[1] == "Case: the sheet's links"
    assert lines[2] == "  expected: an int"


def test_binding_link_simulator_stage_names_its_case_when_the_answer_raises():
    calls = []

    def raises_on_the_last_call(*args):
        calls.append(args)
        if len(calls) == 45:
            raise RuntimeError("out of luck")
        return reference.binding_link(*args)

    result = check.binding_link(raises_on_the_last_call)
    assert result.feedback.splitlines()[1:3] == [
        "Case: the sheet's links", "Hint (an error): your function raised RuntimeError: out of luck"]
