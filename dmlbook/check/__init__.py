"""Checks for the workbook: a student's function, tested and run inside the simulators.

Each check takes the student's function and returns a :class:`CheckResult`
(``passed``, ``feedback``, ``mistake``); in a notebook it shows itself as a
short report: the case that failed, the expected and the actual value, and a
hint that names the likely mistake (bits vs bytes, 10^9 vs 2^30, directed vs
undirected edges, ...). A check runs three stages and stops at the first
failure:

1. hand-worked cases (the sheet's numbers among them);
2. seeded random cases over every parameter, each failing one named;
3. the student's function *inside* the package's simulators, through their
   keyword-only hooks: ``train_data_parallel(allreduce=...)``,
   ``run_fedavg(aggregate=...)``, ``gossip_learning(merge=...)``,
   ``gossip_average(handlers=...)``, ``run_dpsgd(round_fn=...)`` or a
   :class:`~dmlbook.topology.Topology` built from the student's weights.

The package is laid out like the workbook: :mod:`.harness` (results,
failures, isolation, conversions), :mod:`.guard` (what a check trusts, the time
limit), :mod:`.network` (:func:`send`),
:mod:`.reference` (the solutions) and one module per workbook page.

**How a check judges.** The student's values are converted on the package's
side before any comparison (``int`` after an ``Integral`` check, ``float``
for costs, a plain ``torch.Tensor`` for models), so an object whose ``==``
lies cannot pass (a ``str`` is read as a plain ``str`` too). Every expected
value is worked out after the student's call, so it is never on the stack
while their function runs. The reference solutions, and the functions the
checks compare with, are bound when the check modules load; beyond that, a
check does not judge while a function or class of the package (outside
``dmlbook.check``), torch, ``torch.nn.functional``, NumPy, ``math`` or
``builtins`` is rebound to code from the notebook ("✗ ... not judged: the
kernel has rebound ..."), and a function that rebinds any of them to its own
code during the check does not pass and is undone (a library's own rebinding,
such as ``torch._dynamo`` wrapping ``torch.manual_seed``, is left alone; see
:mod:`.guard`). An error raised while judging is the student's when a frame of
its traceback is their code (a returned object whose ``len()`` raises), else
the check's own.

**Isolation: in the kernel, with a watchdog.** The student's function runs in
the notebook's own process (no fork: PyTorch's thread pool does not survive
one), inside :func:`~dmlbook.check.harness.isolated`:

* a time limit, :data:`~dmlbook.check.harness.TIME_LIMIT_S` = 10 s of
  computing (the process's CPU time, so that a busy machine does not fail a
  right solution) or 60 s of waiting, per check by default (``time_limit_s=``
  changes it: 0 turns it off, at most 3,600 s, anything else is a
  ``ValueError``): interval timers (SIGPROF, SIGALRM) raise in the student's
  code, and the report says "✗ your function did not return within 10 s";
  the kernel stays usable and Ctrl-C still interrupts. A function that turns
  the timers off (``signal.signal``, ``setitimer``) and runs past the limit
  gets the same answer, not a pass;
* the student's printed output (stdout, stderr) and warnings are captured;
  the report shows the first 600 characters;
* ``sys.exit`` becomes feedback; so does any exception;
* the default dtype, the grad mode, the default device, the RNG states of
  torch, NumPy and ``random``, and torch's thread count are set for the check
  and restored afterwards;
* a report holds short texts only, never the student's result; :func:`send`
  outside a check keeps the last 1,000 messages, inside one it stops a
  function that sends more than 100,000.

**Limits: what a student can still do to the kernel.** Code that catches
``BaseException`` (a bare ``except:``) in a loop, or turns the timers off,
can outlast the limit (it gets no pass; Ctrl-C still works); a single long C
call (one huge tensor operation) is only stopped when it returns; there is no
time limit off the main thread or on Windows (no interval timers). Changes to
the kernel's other state (global variables, files, environment variables,
other modules' attributes, or ``dmlbook.check``'s own internals) are not
undone, and output written straight to the file descriptors bypasses the
capture. Memory is not capped: a function that allocates tens of GiB can
still exhaust it.

**Limits: what a check cannot tell.** It judges what a function returns (and,
for the ring, the messages it sends), not how it came by it. A function that
calls the reference solutions (:mod:`.reference`, which the workbook offers
after a try), or walks up the check's frames (``sys._getframe``) to the
inputs and helpers the check works with, returns right answers and passes.
So can a ring that first tests whether the network changes what it carries
and uses what ``send`` returns only then: on every network a check uses it
behaves like a right ring.
"""

from __future__ import annotations

import inspect

from . import reference
from .ex1_participants import binding_link, participants
from .ex2_download_cost import cumulative_bill, download_cost
from .ex3_ring_allreduce import ring_allreduce, ring_messages
from .ex4_fedavg import fedavg, quantize, server_step
from .ex5_gossip_merge import gossip_merge, push_pull
from .ex6_dpsgd import dpsgd_messages, dpsgd_round, metropolis_weights
from .harness import TIME_LIMIT_S, CheckResult
from .network import Message, Network, recording, send

_recording = recording  # the name the tests used before the split

#: Every check, in the workbook's order, with the reference functions it takes.
CHECKS = {
    "participants": ("participants",), "binding_link": ("binding_link",),
    "download_cost": ("download_cost",), "cumulative_bill": ("cumulative_bill",),
    "ring_messages": ("ring_messages",), "ring_allreduce": ("ring_allreduce",),
    "fedavg": ("fedavg",), "server_step": ("server_step",), "quantize": ("quantize",),
    "gossip_merge": ("gossip_merge",), "push_pull": ("on_push", "on_reply"),
    "dpsgd_messages": ("dpsgd_messages",), "dpsgd_round": ("dpsgd_round",),
    "metropolis_weights": ("metropolis_weights",),
}


class Solution:
    """A reference solution's source, shown as code in JupyterLab and in plain text."""

    def __init__(self, names):
        self.source = "\n\n".join(inspect.getsource(getattr(reference, n)) for n in names)

    def __repr__(self) -> str:
        return self.source

    def _repr_markdown_(self) -> str:
        return f"```python\n{self.source}```"


def solution(name: str) -> Solution:
    """The reference solution of check ``name`` (open it after you tried)."""
    if name not in CHECKS:
        raise ValueError(f"name must be one of {', '.join(CHECKS)}, got {name!r}")
    return Solution(CHECKS[name])


def reference_args(name: str):
    """The reference function(s) a check takes, in order."""
    return tuple(getattr(reference, n) for n in CHECKS[name])


__all__ = ["CHECKS", "TIME_LIMIT_S", "CheckResult", "Message", "Network", "binding_link",
           "cumulative_bill", "download_cost", "dpsgd_messages", "dpsgd_round", "fedavg",
           "gossip_merge", "metropolis_weights", "participants", "push_pull", "quantize", "recording",
           "reference", "ring_allreduce", "ring_messages", "send", "server_step", "solution"]
