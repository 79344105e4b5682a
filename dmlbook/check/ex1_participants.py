"""Workbook 1: how many participants one link serves, and which link binds."""

from __future__ import annotations

import math
from fractions import Fraction

from ..bandwidth import max_participants, transfer_times
from ..sheet import SHEET
from .display import args_text
from .harness import (Failure, as_float, as_int, call, close, each, ratio_hint, rng_for, stages,
                      unit_mistakes)

_str_str = str.__str__  # bound at load: a plain str of any str, whatever it overrides

_ARGS = ("n_params", "bits_per_param", "link_bps", "time_limit_s")
_BINDING_ARGS = ("n_params", "bits_per_param", "download_bps", "upload_bps", "time_limit_s")


def _expected(n_params, bits, link_bps, time_s) -> int:
    return math.floor(Fraction(link_bps) * Fraction(time_s) / (n_params * bits))


def _hint(args, expected, value):
    """The likely mistake behind a wrong count ``value`` (a float is fine here)."""
    n_params, bits, link_bps, time_s = args
    if math.floor(value) == expected or round(value) == expected:
        return "rounding", ("a participant gets the whole model in time or not at all: "
                            "return a whole number, rounded down (int(... // ...)).")
    if abs(value - expected) == 1:
        return "rounding", ("off by one: round down (floor), not up or to the nearest; "
                            "a model that fits exactly still counts.")
    known = unit_mistakes() + [
        (1 / time_s, "forgot the time limit",
         "the link moves link_bps * time_limit_s bits within the limit."),
        (1 / time_s**2, "divided by the time limit",
         "multiply the rate by the time limit, do not divide by it."),
        (time_s, "time limit counted twice",
         "the link moves link_bps * time_limit_s bits: multiply by the time limit once."),
        (bits, "forgot bits per parameter", "a model is n_params * bits_per_param bits."),
        (1 / bits, "forgot bits per parameter", "a model is n_params * bits_per_param bits.")]
    # Against the unrounded count too: a student's int(... // ...) floors a
    # mistaken formula (22,033.8 / 3,600 comes back as 6, not 6.12).
    exact = link_bps * time_s / (n_params * bits)
    found = ratio_hint(expected, value, known) or next(
        ((mistake, hint) for factor, mistake, hint in known
         if exact * factor >= 1 and value == math.floor(exact * factor)), None)
    # Upside down even where the right count is 0 (a model too big for the link).
    if found is None and value > 0 and close(
            value, (n_params * bits) / (link_bps * time_s), rel=2e-3):
        found = ("fraction upside down", "participants = link_bps * time_limit_s / model bits.")
    return found or ("wrong value", "n participants fit when n * n_params * bits_per_param "
                                    "<= link_bps * time_limit_s.")


def _case(fn, args, label):
    case = f"participants({args_text(_ARGS, args)}), {label}"
    actual = call(fn, case, *args)
    expected = _expected(*args)  # after the call: never on the stack while the function runs
    try:
        value = as_int(actual, case, expected, "the number of participants")
    except Failure as failure:
        value = as_float(actual, case, expected) if failure.mistake == "not a whole number" \
            else None
        if value is None or value == expected:
            raise
        mistake, hint = _hint(args, expected, value)
        raise Failure(case, expected=expected, actual=actual, mistake=mistake,
                      hint=hint if mistake != "wrong value" else failure.hint) from None
    if value != expected:
        mistake, hint = _hint(args, expected, value)
        raise Failure(case, expected=expected, actual=actual, mistake=mistake, hint=hint)
    return value


_SHEET_MODEL = (SHEET.lenet_params, SHEET.bits_per_param)
_SHEET_LINKS = (int(SHEET.download_bps), int(SHEET.upload_bps))
_SHEET_LIMIT = int(SHEET.time_limit_s)
HAND = [((*_SHEET_MODEL, _SHEET_LINKS[0], _SHEET_LIMIT), "the sheet's download link (1 Gbit/s)"),
        ((*_SHEET_MODEL, _SHEET_LINKS[1], _SHEET_LIMIT), "the sheet's upload link (100 Mbit/s)"),
        ((SHEET.lenet_params, 16, _SHEET_LINKS[1], _SHEET_LIMIT), "16-bit parameters"),
        ((1000, 8, 16_000, 1), "a model that fits exactly twice"),
        ((10**6, 32, 10**6, 1), "a model too big for the link: 0")]


def random_args(rng):
    return (int(rng.integers(1, 10**8)), int(rng.choice([1, 2, 4, 8, 16, 32, 64])),
            int(rng.integers(1, 10**4)) * int(rng.choice([10**5, 10**6, 10**8])),
            int(rng.integers(1, 3600)))


def participants(fn, *, time_limit_s=None):
    """Check ``fn(n_params, bits_per_param, link_bps, time_limit_s) -> int``.

    The number of participants one link serves: each needs one whole model.
    """
    def random_cases(fn):
        rng = rng_for("participants")
        for k in range(40):
            _case(fn, random_args(rng), f"random case {k + 1} of 40")
        return "40 seeded random cases over every parameter, rounded down correctly"

    def simulator(fn):
        for (n_params, bits, link_bps, time_s), label in HAND[:3]:
            n = _case(fn, (n_params, bits, link_bps, time_s), label)
            kw = dict(bits_per_param=bits, download_bps=link_bps, upload_bps=link_bps)
            at = transfer_times(n_params, max(n, 1), **kw).upload_s
            over = transfer_times(n_params, n + 1, **kw).upload_s
            if not (at <= time_s < over):
                raise Failure(f"dmlbook.bandwidth.transfer_times with your {n} participants, "
                              f"{label}", expected=f"<= {time_s} s, and > {time_s} s for one "
                              f"more", actual=f"{at:.6g} s, and {over:.6g} s for one more",
                              mistake="wrong value", hint="the count must fill the link.")
        return "dmlbook.bandwidth's transfer times agree (one more participant would not fit)"

    return stages("participants", fn, each(_case, HAND), random_cases, simulator,
                  time_limit_s=time_limit_s)


def _binding_case(fn, args, label):
    case = f"binding_link({args_text(_BINDING_ARGS, args)}), {label}"
    n_params, bits, down, up, time_s = args
    out = call(fn, case, *args)
    # The answer is worked out after the call: never on the stack while the function runs.
    limit = max_participants(n_params, bits_per_param=bits, download_bps=down,
                             upload_bps=up, time_limit_s=time_s)
    expected = (limit.n_max, limit.bottleneck)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise Failure(case, expected=expected, actual=out, mistake="wrong shape",
                      hint='return a pair: (participants, "download" or "upload").')
    n = as_int(out[0], case, expected, "the number of participants")
    link = out[1]
    if n != limit.n_max:
        if n == max(limit.download, limit.upload) and limit.download != limit.upload:
            raise Failure(case, expected=expected, actual=out, mistake="max instead of min",
                          hint="every participant needs both links: the smaller count wins.")
        if n in (limit.download + limit.upload, limit.download * 2, limit.upload * 2):
            raise Failure(case, expected=expected, actual=out, mistake="links added",
                          hint="the two links work at the same time, each for every "
                               "participant: take the smaller count, not the sum.")
        raise Failure(case, expected=expected, actual=out, mistake="wrong value",
                      hint="count the participants each link serves, then take the smaller.")
    if isinstance(link, str):
        link = _str_str(link)  # a plain copy: a subclass's own == cannot lie
    if not isinstance(link, str) or link not in ("download", "upload"):
        raise Failure(case, expected=expected, actual=out, mistake="not a link name",
                      hint='name the binding link "download" or "upload".')
    if link != limit.bottleneck:
        why = ("on a tie, name \"upload\"." if limit.download == limit.upload else
               "the binding link is the one that serves fewer participants.")
        raise Failure(case, expected=expected, actual=out, mistake="wrong link", hint=why)


def binding_link(fn, *, time_limit_s=None):
    """Check ``fn(n_params, bits_per_param, download_bps, upload_bps, time_limit_s)
    -> (participants, "download" or "upload")`` against :func:`max_participants`."""
    hand = [((*_SHEET_MODEL, *_SHEET_LINKS, _SHEET_LIMIT), "the sheet's links"),
            ((*_SHEET_MODEL, *_SHEET_LINKS[::-1], _SHEET_LIMIT), "the links the other way round"),
            ((1000, 8, 16_000, 16_000, 1), "two equal links: a tie"),
            ((SHEET.lstm_params, 16, 10**10, 10**9, 7), "a bigger model on faster links")]

    def random_cases(fn):
        rng = rng_for("binding_link")
        for k in range(40):
            n_params, bits, link, time_s = random_args(rng)
            other = link if k % 5 == 0 else int(link * rng.choice([0.1, 0.5, 2, 10]))
            args = (n_params, bits, link, max(other, 1), time_s)
            _binding_case(fn, args, f"random case {k + 1} of 40")
        return ("40 seeded random cases agree with dmlbook.bandwidth.max_participants, "
                "ties included")

    def simulator(fn):
        n_params, bits, down, up, time_s = hand[0][0]
        n, link = call(fn, "the sheet's links", *hand[0][0])
        n = as_int(n, "the sheet's links", "an int")
        times = transfer_times(n_params, n + 1, bits_per_param=bits, download_bps=down,
                               upload_bps=up)
        slow = "upload" if times.upload_s > time_s else "download"
        if slow != link:
            raise Failure(f"dmlbook.bandwidth.transfer_times with {n + 1} participants",
                          expected=f"{slow} over the limit", actual=f"your {link}",
                          mistake="wrong link", hint="the binding link is the one that "
                                                     "overruns first.")
        return (f"with one more participant the {link} link would need "
                f"{max(times.upload_s, times.download_s):.4g} s > {time_s} s")

    return stages("binding_link", fn, each(_binding_case, hand), random_cases, simulator,
                  time_limit_s=time_limit_s)
