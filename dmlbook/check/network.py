"""The workbook's small message network: :func:`send` and what it records.

Inside a check every message goes to the check's own :class:`Network`, which
keeps all of them (up to :data:`MAX_CHECK_MESSAGES`) and may carry a
``transform`` that changes every payload in a known way: a result computed
around the messages, instead of from what they delivered, then comes out
wrong. Outside a check :func:`send` still works, for trying things by hand,
and keeps only the last :data:`MAX_FREE_MESSAGES` messages.
"""

from __future__ import annotations

import collections
import contextlib
from dataclasses import dataclass

import torch

from .display import short
from .harness import Failure

#: Messages a check's network accepts before it stops the student's function.
MAX_CHECK_MESSAGES = 100_000
#: Messages the network outside a check remembers (the count goes on).
MAX_FREE_MESSAGES = 1_000


@dataclass
class Message:
    """One message of the workbook's network: who sent how many bytes to whom.

    ``total`` is the sum of the values sent (before any ``transform``) and
    ``moment`` their sum weighted by position (1, 2, 3, ... over the flattened
    payload): enough for a check to tell whether two runs sent the same
    messages, values in the same order. NaN where a payload has no such sums.
    """

    src: int
    dst: int
    nbytes: int
    numel: int
    total: float
    moment: float


class Network:
    """Records the messages sent with :func:`send` while it is active.

    ``limit``: the most messages kept; ``bounded=True`` forgets the oldest
    beyond it, ``False`` stops the sender with a failure. ``transform``: a
    function applied to every payload on its way (the receiver gets
    ``transform(payload)``).
    """

    def __init__(self, *, limit: int | None = None, bounded: bool = False, transform=None):
        limit = MAX_CHECK_MESSAGES if limit is None else limit
        self.messages = collections.deque(maxlen=limit if bounded else None)
        self.limit, self.bounded, self.transform = limit, bounded, transform
        self.count = 0

    def send(self, src: int, dst: int, tensor: torch.Tensor) -> torch.Tensor:
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"send(src, dst, tensor) sends a torch tensor, got {short(tensor)}")
        if not self.bounded and self.count >= self.limit:
            raise Failure("the messages your function sent", expected=f"at most {self.limit:,}",
                          actual="more", mistake="messages",
                          hint="your function kept sending: each phase takes n - 1 steps.")
        payload = torch.Tensor.as_subclass(tensor, torch.Tensor).detach().clone()
        self.count += 1
        self.messages.append(Message(int(src), int(dst), payload.numel() * payload.element_size(),
                                     payload.numel(), *_sums(payload)))
        return payload if self.transform is None else self.transform(payload)


def _sums(payload: torch.Tensor) -> tuple[float, float]:
    """The payload's sum and its position-weighted sum (float64); NaN where it has none."""
    if payload.is_complex():  # casting would drop the imaginary part, with a warning
        return float("nan"), float("nan")
    try:
        flat = payload.to("cpu", torch.float64).reshape(-1)
        weights = torch.arange(1, flat.numel() + 1, dtype=torch.float64)
        return float(flat.sum()), float((flat * weights).sum())
    except Exception:  # a payload with no sum (meta, sparse, ...): not comparable
        return float("nan"), float("nan")


_free = Network(limit=MAX_FREE_MESSAGES, bounded=True)
_active = [_free]  # the network send() uses now


def send(src: int, dst: int, tensor: torch.Tensor) -> torch.Tensor:
    """Send ``tensor`` from node ``src`` to node ``dst``; returns the copy ``dst`` receives.

    Every call is one message. The copy is independent of ``tensor``: the
    receiver may change it without touching the sender's data.
    """
    return _active[-1].send(src, dst, tensor)


@contextlib.contextmanager
def recording(transform=None):
    """A fresh network for the block: ``with recording() as net: ...; net.messages``."""
    net = Network(transform=transform)
    _active.append(net)
    try:
        yield net
    finally:
        _active.remove(net)
