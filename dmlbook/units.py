"""Units and the input checks every public function shares.

Conventions used throughout the book:

* network speeds are in **bits** per second, with decimal prefixes
  (1 Mbit/s = 10**6 bit/s, 1 Gbit/s = 10**9 bit/s), as ISPs advertise them;
* storage and billing are in **bytes**, with binary prefixes where a provider
  bills per GiB (1 GiB = 2**30 bytes);
* one byte is 8 bits.

Every count a public function takes has an upper bound, one constant below
each. The bounds of the simulations are sized so that a run at the bound
finishes on a 2-core laptop in minutes and within about 1 GiB of memory. That
promise is measured, not assumed: the table "Runs at the bounds" of
benchmarks/README.md is the output of ``benchmarks/bounds.py``, one run at
each bound in a fresh process, with its wall-clock and CPU seconds, its peak
resident memory and the machine's load. In its runs of 4 December 2026 (at
loads from quiet to 5) every case took at most about 10 minutes of CPU
(FedAvg of 4,096 clients for 2,048 rounds at :data:`MAX_LEDGER_RECORDS`, 570
CPU s; every other case under 500) and peaked at most at 1.10 GiB (5 nodes
of a 20-million-parameter model at :data:`MAX_STACKED_PARAMS`), except the
parameter server with 4,096 workers at :data:`MAX_NODE_STEPS`: 1.38 and
1.56 GiB in two runs on a busy machine, and 2.26 GiB in a third beside
heavier work, against 0.67 GiB on a quiet one. Its heap fragmented: at the
end of the third run glibc's heap held 1.82 GiB free and 0.15 GiB in use.
Since then the engine hands the free heap back every
:data:`dmlbook.heap.TRIM_EVERY_CALLS` steps (:mod:`dmlbook.heap`): beside the
same work a trimmed copy of that run stayed at 0.60 GiB (to round 1,201, when
it was stopped), and the whole case with the package's trimming peaked at
0.73 GiB at load 4.4, 1,407 s. These are measured on the package's
default model, the digits MLP. A step of a larger model, or on a larger batch,
counts as more than one node-step (:data:`MACS_PER_NODE_STEP`), so that the
sheet's LeNet at the bound is about 30,000 node-steps: 7 to 14 minutes at the
14.6 to 28 ms a node-step measured in two runs (benchmarks/README.md). In the same
way an evaluation of a larger model, or on a larger test set, counts as more
than one (:data:`MACS_PER_NODE_EVAL`): a LeNet node's evaluation on 200 test
images (54 ms) counts 64, so that a LeNet run at :data:`MAX_NODE_EVALS` makes
1,552 evaluations (215 CPU s for the run), where it would have made 100,000
(1.5 hours). The
same section of benchmarks/README.md lists the
bounds that were lowered or added to keep the promise
(:data:`MAX_STACKED_PARAMS`, :data:`MAX_LEDGER_RECORDS`, the ledger's
``MAX_ROUND``, :data:`MAX_NODE_EVALS`, :data:`MAX_WORKER_COUNTS`,
:data:`MAX_SWEEP_WORKER_ROUNDS`, :data:`MAX_RING_STEPS`,
:data:`MAX_GOSSIP_STEPS`, :data:`MAX_GOSSIP_NODE_EVALS`,
:data:`MAX_RUN_MESSAGES`); ``lecturers.md`` lists every bound's value. The bounds of
the closed-form formulas only keep every result a finite number.
Numbers may be Python or NumPy scalars (``np.float32(2.5)``, ``np.int64(8)``,
``np.uint8(200)``) or ``fractions.Fraction``; the checkers return plain Python
``int`` / ``float``, and every public callable computes with the checked value,
never the raw one (so a ``uint8`` or ``int16`` never wraps around). A choice
(:func:`check_choice`) takes a NumPy string, integer or boolean for the Python
value it holds and returns the plain choice. Everything else (booleans where a
number is asked for, numeric strings, ``complex``, ``Decimal``, 0-d arrays and
tensors, NaN, infinities, a value outside its bounds) is a ``ValueError`` that
names the caller's parameter and what it accepts. Divisors have lower bounds
too (:data:`MIN_BPS`, :data:`MIN_SECONDS`), so that ``5e-324`` cannot overflow a
quotient. ``tests/test_hostile_values.py`` checks these promises over the
public API.
"""

from __future__ import annotations

import math
import numbers
import sys

BITS_PER_BYTE = 8
KBIT = 10**3
MBIT = 10**6
GBIT = 10**9
KIB = 2**10
MIB = 2**20
GIB = 2**30
FLOAT32_BITS = 32

# --- upper bounds of the simulations (one process, CPU) ---------------------
#: Simulated nodes, workers or clients of one run (4,096 x a 2,410-parameter MLP
#: is 40 MB of parameters; a naive all-reduce among them is 16.8 M messages).
MAX_NODES = 4096
#: Rounds, steps, local steps or cycles of one run.
MAX_ROUNDS = 100_000
#: Node-steps of one run: nodes x rounds x local steps (on the digits MLP, 400 to
#: 500 s of CPU at the bound: D-PSGD on a ring of 1,000 nodes, the parameter
#: server with 4,096 workers).
MAX_NODE_STEPS = 10_000_000
#: Multiply-accumulates a node-step may take and still count as one towards
#: :data:`MAX_NODE_STEPS` (and :data:`MAX_GOSSIP_STEPS`): a step counts once per
#: started 2**20 multiply-accumulates of its forward pass on its batch
#: (:func:`dmlbook.models.step_cost`). The digits MLP on 32 examples is 75,776
#: (one node-step); the sheet's LeNet on 32 CIFAR-shaped images is 343 million,
#: 328 node-steps. Measured, a LeNet node-step took 14.6 ms (1,024 nodes) to 28
#: ms (10 nodes), 300 to 1,400 times the MLP's 20 to 45 us at the bound. Without
#: it a run of LeNet at MAX_NODE_STEPS would take 40 to 80 hours.
MACS_PER_NODE_STEP = 2**20
#: Multiply-accumulates one node's evaluation on the test set may take and
#: still count as one evaluation towards :data:`MAX_NODE_EVALS` (and
#: :data:`MAX_GOSSIP_NODE_EVALS`): an evaluation counts once per started 2**25
#: multiply-accumulates of its forward pass over the whole test set
#: (:func:`dmlbook.models.evaluation_cost`). The digits MLP on its 359 test
#: images is 850,112 (one evaluation); the sheet's LeNet on 200 CIFAR-shaped
#: images is 2.1 billion, 64 evaluations. A LeNet node's evaluation took 54 to
#: 59 ms (5 December 2026, 2 cores, under load), so a LeNet run at
#: MAX_NODE_EVALS evaluates 1,552 times: 215 CPU s for the whole run
#: (benchmarks/README.md), where the 100,000 of an unweighted bound were 1.5
#: hours. The MLP's evaluation is cheaper still (99,000 of them and their
#: training took 25 CPU s), so this unit weighs LeNet below its time, enough
#: to keep its runs to minutes. Steps have a smaller unit (2**20): a step's
#: batch is small, and its backward pass and update add to its cost.
MACS_PER_NODE_EVAL = 2**25
#: Examples in one mini-batch of one node.
MAX_BATCH_SIZE = 65_536
#: Examples all nodes process in one batched step: nodes x batch size
#: (2**20 digit examples are 256 MiB of float32 inputs).
MAX_EXAMPLES_PER_STEP = 2**20
#: A layer's width: hidden units, channels, features, classes, embedding size.
MAX_WIDTH = 16_384
#: Words of a vocabulary.
MAX_VOCAB = 1_000_000
#: Parameters of one model (200 MB in float32).
MAX_MODEL_PARAMS = 50_000_000
#: Parameters of all simulated nodes together: nodes x parameters (381 MiB in
#: float32). A D-PSGD run holds one copy: the step updates each slice of nodes
#: as soon as its gradients are known, and mixing works a block of columns at
#: a time. It was 2**28, whose runs peaked at 4.6 GiB with four copies, then
#: 2**25 (issue #27); 10**8 admits 1,024 nodes of the sheet's LeNet (#24).
MAX_STACKED_PARAMS = 10**8
#: Undirected edges of a graph networkx builds (about 200 MB).
MAX_GRAPH_EDGES = 500_000
#: Events of one gossip-averaging run: nodes x cycles (34 s at the bound).
MAX_GOSSIP_EVENTS = 2_000_000
#: SGD steps of one gossip-learning run: n_nodes x until / delta. With ``delay
#: = 0`` no two steps can be batched, so each is one node's forward and
#: backward plus the event queue's bookkeeping (about 0.8 ms a step on the
#: digits MLP, 2 threads). It was MAX_GOSSIP_EVENTS (2 million: about half an
#: hour at that rate, hours with frequent evaluations); issue #27.
MAX_GOSSIP_STEPS = 250_000
#: Node evaluations of one gossip-learning run: n_nodes x (until / eval_every +
#: 1). At MAX_NODE_EVALS (1,000 evaluations of 1,000 nodes) the process's heap
#: grew by 2 to 6 MB an evaluation and passed 2 GiB (glibc keeps the freed
#: evaluation buffers between the event loop's small allocations); at this
#: bound the run peaks at 0.29 GiB (issue #27).
MAX_GOSSIP_NODE_EVALS = 100_000
#: Ring steps of one ``train_data_parallel('ring')`` run: rounds x 2 (n_workers
#: - 1), each one tensor operation for all members plus its ledger record (0.18
#: ms a step at 1,024 workers: 182 s at the bound); MAX_NODE_STEPS alone allowed
#: 20 million steps (an hour) at 1,024 workers.
MAX_RING_STEPS = 1_000_000
#: Node evaluations on the test set in one ``run_dpsgd`` or
#: ``run_decentralized_exchange`` run: (nodes + 1) x evaluations. It was
#: 1,000,000: 999 nodes evaluated after each of 999 rounds took 273 s and
#: peaked at 3.80 GiB, because training steps between evaluations fragment the
#: heap (evaluations alone stay at 0.28 GiB; ``malloc_trim`` after each one
#: halved the peak and doubled the time). At 100,000, as gossip learning's
#: MAX_GOSSIP_NODE_EVALS, 100 evaluations of 1,000 nodes peak at about 1 GiB.
MAX_NODE_EVALS = 100_000
#: Worker counts one sweep takes (``compute_profile``, ``traffic_vs_workers``).
MAX_WORKER_COUNTS = 64
#: Worker-rounds of all the runs of one sweep of ``traffic_vs_workers``: the sum
#: of its worker counts x rounds (each count runs all three schemes; one ring
#: round of MAX_NODES workers is 33.5 M messages).
MAX_SWEEP_WORKER_ROUNDS = MAX_NODES
#: Seeds: NumPy, torch and networkx all accept 0 .. 2**32 - 1.
MAX_SEED = 2**32 - 1
#: Messages one ledger may hold as records (17 bytes each: 272 MiB; one naive
#: all-reduce round of MAX_NODES, 16,773,120 messages, fits, a ring round of
#: MAX_NODES needs a counts-only ledger); larger runs use a counts-only ledger.
#: It was 10**8 (1.6 GiB of records, 2.5 GiB while they were joined); lowered
#: for the promise above (issue #27: 2**25 still peaked at 1.5 GiB).
MAX_LEDGER_RECORDS = 2**24
#: Messages of one simulated run (rounds x messages a round, counted before the
#: first round). A naive all-reduce of MAX_NODES workers sends 16.8 M messages a
#: round, 0.66 s of CPU: MAX_NODE_STEPS alone allowed 2,441 such rounds (27
#: minutes), and D-PSGD on the complete graph of 1,000 nodes 10,000 rounds of
#: a million messages (issue #27). At this bound, 119 naive rounds of MAX_NODES
#: workers or 2,002 D-PSGD rounds on that graph.
MAX_RUN_MESSAGES = 2 * 10**9

# --- upper bounds of the closed-form formulas --------------------------------
#: Counts in formulas: parameters, participants, clients, rounds, nodes, steps.
MAX_COUNT = 10**15
#: Bits per parameter (64: float64).
MAX_BITS_PER_PARAM = 64
#: Bytes per parameter (8: float64).
MAX_BYTES_PER_PARAM = 8
#: Link speeds in bit/s (1 Pbit/s).
MAX_BPS = 10**15
#: Slowest link speed in bit/s a formula divides by (1 bit/s).
MIN_BPS = 1
#: Shortest duration in seconds a formula divides by (1 ns).
MIN_SECONDS = 1e-9
#: Largest budget in US dollars.
MAX_USD = 10**15
#: Durations in seconds (about 31.7 years).
MAX_SECONDS = 10**9
#: Prices in US dollars per GiB.
MAX_USD_PER_GIB = 10**6
#: Largest learning rate a trainer accepts: larger ones overflow before the
#: divergence check can see them (a run that diverges stops with a message).
MAX_LR = 1e30


def _describe(value) -> str:
    return f"{value!r} ({type(value).__name__})"


def _plain(value):
    """A Python int or float of a real number (NumPy scalars included)."""
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def _real(name: str, value, what: str):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be {what}, got {_describe(value)}")
    if isinstance(value, numbers.Integral):
        return int(value)
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return value


def check_number(name: str, value, *, allow_zero: bool = False, maximum=None, minimum=None):
    """Return ``value`` if it is a finite real number > 0 (>= 0 with ``allow_zero``).

    ``maximum`` (inclusive) bounds it from above, ``minimum`` (inclusive, > 0)
    from below, for a divisor whose tiny values would overflow a quotient
    (``5e-324`` bit/s). Booleans, strings, None,
    NaN and infinities are rejected with a ``ValueError`` that names the
    parameter and what it accepts. Returns a Python ``int`` or ``float``.
    """
    what = "a finite number >= 0" if allow_zero else "a finite number > 0"
    if maximum is not None:
        # A bound computed from other inputs may be an int too large for a float.
        bound = f"{maximum:g}" if abs(maximum) < 1e300 else f"{float(maximum):g}" \
            if abs(maximum) < 1.7e308 else "the largest float"
        what += f" and <= {bound}"
    if minimum is not None:
        what = what.replace(" > 0", f" >= {minimum:g}", 1)
    value = _real(name, value, what)
    if value < 0 or (value == 0 and not allow_zero) or (minimum is not None and value < minimum):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return value


def check_int(name: str, value, *, minimum: int = 1, maximum: int | None = None) -> int:
    """Return ``value`` as an ``int`` if it is a whole number in [``minimum``, ``maximum``].

    Floats with an integral value (``8.0``) are accepted; ``8.5``, booleans,
    strings, NaN and infinities are not.
    """
    what = f"a whole number >= {minimum}"
    if maximum is not None:
        what += f" and <= {maximum:,}"
    value = _real(name, value, what)
    if value != int(value) or value < minimum or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return int(value)


def check_seed(value, name: str = "seed") -> int:
    """A seed: a whole number from 0 to :data:`MAX_SEED`."""
    return check_int(name, value, minimum=0, maximum=MAX_SEED)


def check_probability(name: str, value) -> float:
    """Return ``value`` if it is a number in [0, 1]."""
    what = "a probability in [0, 1]"
    value = _real(name, value, what)
    if not 0 <= value <= 1:
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return float(value)


def check_fraction(name: str, value) -> float:
    """Return ``value`` if it is a number strictly between 0 and 1."""
    what = "a fraction in (0, 1)"
    value = _real(name, value, what)
    if not 0 < value < 1:
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return float(value)


def _same_kind(value, choice) -> bool:
    """Whether ``value`` may stand for ``choice``: the same kind of Python value.

    A NumPy string, integer or boolean stands for a ``str``, ``int`` or
    ``bool`` choice (``np.str_("ring")``, ``np.int64(3)``, ``np.bool_(True)``);
    a bool never stands for an int, nor a float for an int.
    """
    import numpy as np

    if choice is None or isinstance(choice, (bool, np.bool_)):
        return isinstance(value, (bool, np.bool_)) or value is None and choice is None
    if isinstance(choice, str):
        return isinstance(value, str)
    if isinstance(choice, numbers.Integral):
        return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
    if isinstance(choice, float):
        return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    return type(value) is type(choice)


def check_choice(name: str, value, choices):
    """Return the one of ``choices`` that ``value`` equals (the choice itself).

    NumPy scalars stand for the Python value they hold (see ``_same_kind``),
    and the plain choice is returned, never the caller's raw value.
    """
    for c in choices:
        try:
            if value is c or (_same_kind(value, c) and bool(value == c)):
                return c
        except (TypeError, ValueError):  # arrays and other values without a plain ==
            pass
    options = ", ".join(repr(c) for c in choices)
    raise ValueError(f"{name} must be one of {options}, got {value!r}")


def check_product(name: str, value: int, maximum: int, what: str) -> int:
    """Reject a product of counts (``what`` says which) above ``maximum``."""
    if value > maximum:
        raise ValueError(f"{name} must keep {what} <= {maximum:,}, got {value:,}")
    return value


def check_batch_size(batch_size, n_nodes: int = 1) -> int:
    """``batch_size`` per node, checked against both batch bounds for ``n_nodes`` nodes."""
    batch_size = check_int("batch_size", batch_size, maximum=MAX_BATCH_SIZE)
    check_product("batch_size", n_nodes * batch_size, MAX_EXAMPLES_PER_STEP,
                  "nodes x batch_size (MAX_EXAMPLES_PER_STEP)")
    return batch_size


def _finite_tensor(value) -> bool:
    """Whether every entry of a tensor is finite: for floats, one pass with no copy.

    ``aminmax`` propagates NaN and keeps infinities, so the extremes are
    finite exactly when every entry is (20 times faster than ``isfinite``,
    which writes a mask as large as the tensor: checked every round).
    """
    import torch

    if value.numel() == 0:
        return True
    if value.is_floating_point():
        low, high = torch.aminmax(value)
        return math.isfinite(low.item()) and math.isfinite(high.item())
    return bool(value.isfinite().all())


def check_diverged(round, **values) -> None:
    """Stop a run whose loss or parameters stopped being finite numbers.

    ``values`` are tensors, arrays or numbers, by name. Raises
    ``ValueError("diverged at round r; try a smaller lr ...")``.
    """
    import numpy as np

    for what, value in values.items():
        if value is None:
            continue
        if hasattr(value, "isfinite") and hasattr(value, "all") and hasattr(value, "detach"):
            finite = _finite_tensor(value.detach())
        else:
            finite = bool(np.isfinite(np.asarray(value, dtype=np.float64)).all())
        if not finite:
            raise ValueError(f"diverged at round {round}; try a smaller lr "
                             f"({what}: no longer finite)")


def check_tensor(name: str, value, *, allow_empty: bool = True):
    """A floating-point ``torch.Tensor`` whose entries are all finite."""
    import torch

    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        raise ValueError(f"{name} must be a floating-point torch.Tensor, got {_describe(value)}")
    if not allow_empty and value.numel() == 0:
        raise ValueError(f"{name} must have at least one entry, got an empty tensor")
    if value.numel() and not bool(value.isfinite().all()):
        raise ValueError(f"{name} must have finite entries only (no NaN or inf)")
    return value


def bits_to_bytes(bits: float) -> float:
    """Bits to bytes (8 bits per byte)."""
    return bits / BITS_PER_BYTE


#: Largest size or speed the formatters take (the largest float64).
MAX_FORMATTED = sys.float_info.max


def format_bytes(n_bytes: float) -> str:
    """Human-readable size in binary units: ``'18.9 MiB'``, ``'3.0 PiB'``.

    ``n_bytes`` is a finite number >= 0 (at most :data:`MAX_FORMATTED`).
    """
    n_bytes = float(check_number("n_bytes", n_bytes, allow_zero=True, maximum=MAX_FORMATTED))
    for unit, power in (("EiB", 60), ("PiB", 50), ("TiB", 40), ("GiB", 30), ("MiB", 20),
                        ("KiB", 10)):
        if n_bytes >= 2**power:
            scaled = n_bytes / 2**power
            return f"{scaled:.1f} {unit}" if scaled < 1e6 else f"{scaled:.3g} {unit}"
    return f"{n_bytes:.0f} B"


def format_bps(bits_per_s: float) -> str:
    """Human-readable speed in decimal units: ``'100 Mbit/s'``.

    ``bits_per_s`` is a finite number >= 0 (at most :data:`MAX_FORMATTED`).
    """
    bits_per_s = float(check_number("bits_per_s", bits_per_s, allow_zero=True,
                                    maximum=MAX_FORMATTED))
    for unit, size in (("Gbit/s", GBIT), ("Mbit/s", MBIT), ("kbit/s", KBIT)):
        if bits_per_s >= size:
            return f"{bits_per_s / size:g} {unit}"
    return f"{bits_per_s:g} bit/s"
