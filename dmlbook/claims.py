"""Claims a chapter makes in words, checked against the numbers it computed.

A chapter states each qualitative sentence once, with the condition that makes
it true, in a hidden cell::

    claim("balanced sampling reduces the share of silent nodes", bal < uni)

When the condition stops holding (a change to the package, a different seed,
a different machine), :func:`claim` raises :class:`ClaimError`, the cell fails,
and the ``-W`` build fails with the claim's own words in the log.

A claim about trainings is checked on several seeds, not on the one run that
was made (issue 21): :func:`claim_seeds` takes one bool per seed and returns
the phrase the sentence glues ("in 5 of 5 seeds"), and :class:`Spread` is the
median and range of a number over the seeds, for the sentence to quote::

    runs = [run(seed=s) for s in SEEDS]
    glue("beats", claim_seeds("gossip beats SGD", [r.gossip > r.sgd for r in runs]))
    glue("acc", str(Spread.of([r.gossip for r in runs])))  # "0.81 (range 0.80–0.82 over 5 seeds)"
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

import numpy as np

__all__ = ["ClaimError", "MAX_SEEDS", "MIN_SEEDS", "Spread", "claim", "claim_seeds",
           "claims_made", "reset"]

# A claim about trainings holds over at least this many seeds (developers' guide).
MIN_SEEDS = 3
# Upper bound on the seeds of one claim (each seed is a whole training run).
MAX_SEEDS = 1000

_MADE: list[str] = []


class ClaimError(AssertionError):
    """A sentence of the book that its own numbers no longer support."""


def claim(statement: str, condition, **evidence) -> bool:
    """Assert that ``statement`` holds, because ``condition`` is true.

    ``condition`` is a bool (or a numpy bool, or an array that must be true
    everywhere). ``evidence`` names the numbers behind it; they are printed in
    the error, so a failing build says what changed. Returns ``True``.
    """
    if not isinstance(statement, str) or not statement.strip():
        raise ValueError(f"statement must be a non-empty sentence, got {statement!r}")
    holds = np.asarray(condition)
    if holds.dtype != bool:
        raise ValueError(f"condition of claim {statement!r} must be a bool "
                         f"(a comparison), got {condition!r}")
    if not holds.size or not bool(holds.all()):
        detail = ", ".join(f"{k}={v!r}" for k, v in evidence.items())
        raise ClaimError(f"claim no longer holds: {statement!r}"
                         + (f" ({detail})" if detail else ""))
    _MADE.append(statement)
    return True


def _seed_flags(statement: str, holds) -> list[bool]:
    try:
        if isinstance(holds, (str, bytes)):
            raise TypeError
        count = len(holds)
    except TypeError:
        raise ValueError(f"holds of claim {statement!r} must be a sequence of bools, one per "
                         f"seed, got {holds!r}") from None
    if not MIN_SEEDS <= count <= MAX_SEEDS:
        raise ValueError(f"holds of claim {statement!r} must have {MIN_SEEDS} to {MAX_SEEDS} "
                         f"entries (one per seed), got {count}")
    flags = []
    for seed, flag in enumerate(holds):
        if not isinstance(flag, (bool, np.bool_)):
            raise ValueError(f"holds of claim {statement!r} must be bools (one comparison per "
                             f"seed); seed index {seed} gave {flag!r}")
        flags.append(bool(flag))
    return flags


def claim_seeds(statement: str, holds, *, at_least: int | None = None, **evidence) -> str:
    """Assert that ``statement`` holds in at least ``at_least`` of the seeds.

    ``holds`` has one bool per seed (``MIN_SEEDS`` to ``MAX_SEEDS`` of them),
    e.g. ``[g > c for g, c in zip(gossip, sgd)]``; ``at_least`` defaults to
    every seed. When fewer hold, raises :class:`ClaimError` naming the
    statement, the seed indices where it fails and the ``evidence`` (the
    numbers per seed). Returns the phrase for the sentence: ``"in 5 of 5 seeds"``.
    """
    if not isinstance(statement, str) or not statement.strip():
        raise ValueError(f"statement must be a non-empty sentence, got {statement!r}")
    flags = _seed_flags(statement, holds)
    n = len(flags)
    if at_least is None:
        at_least = n
    elif isinstance(at_least, bool) or not isinstance(at_least, Integral) \
            or not 1 <= at_least <= n:
        raise ValueError(f"at_least must be a whole number from 1 to len(holds) = {n}, "
                         f"got {at_least!r}")
    at_least = int(at_least)
    held = sum(flags)
    if held < at_least:
        failing = [i for i, f in enumerate(flags) if not f]
        detail = ", ".join(f"{k}={v!r}" for k, v in evidence.items())
        raise ClaimError(f"claim does not hold over seeds: {statement!r} holds in {held} of "
                         f"{n} seeds, needs {at_least}; fails at seed index(es) {failing}"
                         + (f" ({detail})" if detail else ""))
    _MADE.append(statement)
    return f"in {held} of {n} seeds"


@dataclass(frozen=True)
class Spread:
    """A number measured over several seeds: its median and range.

    ``str()`` reads ``"0.81 (range 0.80–0.82 over 5 seeds)"``, each number with
    ``digits`` decimals and thousands separators.
    """

    median: float
    low: float
    high: float
    n: int
    digits: int = 2

    @classmethod
    def of(cls, values, *, digits: int = 2) -> "Spread":
        """The spread of ``values``: one finite number per seed, ``MIN_SEEDS`` or more."""
        if isinstance(digits, bool) or not isinstance(digits, Integral) or not 0 <= digits <= 10:
            raise ValueError(f"digits must be a whole number from 0 to 10, got {digits!r}")
        try:
            raw = np.asarray(values)
        except (TypeError, ValueError):
            raw = np.asarray([], dtype=object)
        if raw.dtype.kind not in "iuf":
            raise ValueError(f"values must be real numbers (not bools or text), one per seed, "
                             f"got {values!r}")
        if raw.ndim != 1 or not MIN_SEEDS <= raw.size <= MAX_SEEDS:
            raise ValueError(f"values must be a flat sequence of {MIN_SEEDS} to {MAX_SEEDS} "
                             f"numbers (one per seed), got shape {raw.shape}")
        array = raw.astype(float)
        if not np.isfinite(array).all():
            raise ValueError(f"values must be finite, got {values!r}")
        return cls(float(np.median(array)), float(array.min()), float(array.max()),
                   int(array.size), int(digits))

    def _fmt(self, value: float) -> str:
        text = f"{value:,.{self.digits}f}"
        return text[1:] if text.startswith("-") and not text.strip("-0.,") else text

    def __str__(self) -> str:
        return (f"{self._fmt(self.median)} (range {self._fmt(self.low)}–{self._fmt(self.high)} "
                f"over {self.n} seeds)")


def claims_made() -> list[str]:
    """The statements checked so far in this process (kernel), in order."""
    return list(_MADE)


def reset() -> None:
    """Forget the claims made so far (tests)."""
    _MADE.clear()
