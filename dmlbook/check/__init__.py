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
failures, isolation, conversions), :mod:`.network` (:func:`send`),
:mod:`.reference` (the solutions) and one module per workbook page.

**How a check judges.** The student's values are converted on the package's
side before any comparison (``int`` after an ``Integral`` check, ``float``
for costs, a plain ``torch.Tensor`` for models), so an object whose ``==``
lies cannot pass. The reference solutions, and the functions the checks
compare with, are bound when the check modules load: rebinding
``dmlbook.check.reference.gossip_merge`` or ``torch.allclose`` in the kernel
afterwards does not change a verdict. An error raised while judging, outside
the student's function, is reported as the check's error, not the student's.

**Isolation: in the kernel, with a watchdog.** The student's function runs in
the notebook's own process (no fork: PyTorch's thread pool does not survive
one), inside :func:`~dmlbook.check.harness.isolated`:

* a time limit, :data:`~dmlbook.check.harness.TIME_LIMIT_S` = 10 s per check
  by default (``time_limit_s=`` changes it, 0 turns it off): a SIGALRM timer
  raises in the student's code, and the report says "✗ your function did not
  return within 10 s"; the kernel stays usable and Ctrl-C still interrupts;
* the student's printed output (stdout, stderr) and warnings are captured;
  the report shows the first 600 characters;
* ``sys.exit`` becomes feedback; so does any exception;
* the default dtype, the grad mode, the RNG states of torch, NumPy and
  ``random``, and torch's thread count are set for the check and restored
  afterwards;
* a report holds short texts only, never the student's result; :func:`send`
  outside a check keeps the last 1,000 messages, inside one it stops a
  function that sends more than 100,000.

**Limits: what a student can still do to the kernel.** Code that catches
``BaseException`` (a bare ``except:``) in a loop can outlast the limit (the
timer fires again every 0.2 s, and Ctrl-C still works); a single long C call
(one huge tensor operation) is only stopped when it returns; there is no time
limit off the main thread or on Windows (no SIGALRM). Changes to the
kernel's other state (global variables, files, environment variables, other
modules' attributes, or ``dmlbook.check``'s own internals) are not undone, and
output written straight to the file descriptors bypasses the capture. Memory
is not capped: a function that allocates tens of GiB can still exhaust it.
"""

from __future__ import annotations

import inspect

from . import reference
from .ex1_participants import binding_link, participants
from .ex2_download_cost import cumulative_bill, download_cost
from .ex3_ring_allreduce import ring_allreduce
from .ex4_fedavg import fedavg, server_step
from .ex5_gossip_merge import gossip_merge, push_pull
from .ex6_dpsgd import dpsgd_messages, dpsgd_round, metropolis_weights
from .harness import TIME_LIMIT_S, CheckResult
from .network import Message, Network, recording, send

_recording = recording  # the name the tests used before the split

#: Every check, in the workbook's order, with the reference functions it takes.
CHECKS = {
    "participants": ("participants",), "binding_link": ("binding_link",),
    "download_cost": ("download_cost",), "cumulative_bill": ("cumulative_bill",),
    "ring_allreduce": ("ring_allreduce",),
    "fedavg": ("fedavg",), "server_step": ("server_step",),
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
           "gossip_merge", "metropolis_weights", "participants", "push_pull", "recording",
           "reference", "ring_allreduce", "send", "server_step", "solution"]
