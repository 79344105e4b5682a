"""The processes below a process, read from /proc (Linux).

Shared by the tests that must find every process a run started: the launcher's
workers, a kernel's children. Standard library only: the Binder-environment test
imports it inside Binder's venv too.
"""

from __future__ import annotations

from pathlib import Path


def descendants(pid: int) -> set[int]:
    """Every process whose chain of parents leads to ``pid`` (``pid`` itself excluded)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found
