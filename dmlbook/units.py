"""Units and the input checks every public function shares.

Conventions used throughout the book:

* network speeds are in **bits** per second, with decimal prefixes
  (1 Mbit/s = 10**6 bit/s, 1 Gbit/s = 10**9 bit/s), as ISPs advertise them;
* storage and billing are in **bytes**, with binary prefixes where a provider
  bills per GiB (1 GiB = 2**30 bytes);
* one byte is 8 bits.
"""

from __future__ import annotations

import math
import numbers

BITS_PER_BYTE = 8
KBIT = 10**3
MBIT = 10**6
GBIT = 10**9
KIB = 2**10
MIB = 2**20
GIB = 2**30
FLOAT32_BITS = 32


def _describe(value) -> str:
    return f"{value!r} ({type(value).__name__})"


def check_number(name: str, value, *, allow_zero: bool = False) -> float:
    """Return ``value`` if it is a finite real number > 0 (>= 0 with ``allow_zero``).

    Booleans, strings, None, NaN and infinities are rejected with a
    ``ValueError`` that names the parameter and what it accepts.
    """
    what = "a finite number >= 0" if allow_zero else "a finite number > 0"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be {what}, got {_describe(value)}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return value


def check_int(name: str, value, *, minimum: int = 1) -> int:
    """Return ``value`` as an ``int`` if it is a whole number >= ``minimum``.

    Floats with an integral value (``8.0``) are accepted; ``8.5``, booleans,
    strings, NaN and infinities are not.
    """
    what = f"a whole number >= {minimum}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be {what}, got {_describe(value)}")
    if not math.isfinite(value) or value != int(value):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return int(value)


def check_probability(name: str, value) -> float:
    """Return ``value`` if it is a number in [0, 1]."""
    check_number(name, value, allow_zero=True)
    if value > 1:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def check_choice(name: str, value, choices) -> str:
    """Return ``value`` if it is one of ``choices``."""
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def bits_to_bytes(bits: float) -> float:
    """Bits to bytes (8 bits per byte)."""
    return bits / BITS_PER_BYTE


def format_bytes(n_bytes: float) -> str:
    """Human-readable size in binary units: ``'18.9 MiB'``."""
    for unit, size in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if n_bytes >= size:
            return f"{n_bytes / size:.1f} {unit}"
    return f"{n_bytes:.0f} B"


def format_bps(bits_per_s: float) -> str:
    """Human-readable speed in decimal units: ``'100 Mbit/s'``."""
    for unit, size in (("Gbit/s", GBIT), ("Mbit/s", MBIT), ("kbit/s", KBIT)):
        if bits_per_s >= size:
            return f"{bits_per_s / size:g} {unit}"
    return f"{bits_per_s:g} bit/s"
