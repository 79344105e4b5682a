"""What the lecturers' page generates: the common mistakes per exercise, and the session plan.

The mistakes are not written twice. They are read from what already names
them:

- the self-checks (:func:`dmlbook.selfcheck.for_exercise`): a numeric check's
  named mistakes, a multiple-choice check's wrong options with their
  explanations, and the unit slips every numeric check recognises
  (:data:`dmlbook.selfcheck.UNIT_FACTORS`);
- the workbook's checks (``dmlbook/check``): every ``mistake=... hint=...``
  they can report, and every ``(mistake, hint)``, ``(factor, mistake, hint)`` or
  ``(mistake, wrong_result, hint)`` tuple of literal text in their source, read with :mod:`ast` (not imported or
  run). The checks are a package with one module per workbook page
  (``ex1_participants.py``, ...), or one module whose functions are named after
  the pages; both layouts are read.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from . import selfcheck
from .sheet import EXERCISES, exercise

__all__ = ["Mistake", "SESSION_PLAN", "common_mistakes", "workbook_mistakes",
           "selfcheck_mistakes", "session_minutes", "markdown_text"]

# Reported for any function: they say nothing about the exercise.
GENERIC = {"wrong value", "an error", "an empty stub", "not a number", "wrong shape",
           "not a tensor", "time limit", "too slow", "no output", "timeout"}
CHECK_DIR = Path(__file__).resolve().parent / "check"
CHECK_MODULE = Path(__file__).resolve().parent / "check.py"

# The 90-minute session: (minutes, part, what happens). The page shows it as a table.
SESSION_PLAN: tuple[tuple[int, str, str], ...] = (
    (5, "Start", "Students open the handout (or the book with solutions folded) and the "
                 "workbook; state the session's question: what does communication cost, "
                 "and who pays it?"),
    (15, "Exercises 1 and 2", "Predict first (the predictions above each result), then "
                              "compute n_max and the bill; check with the self-checks. "
                              "Discuss which link binds and GiB against GB."),
    (20, "Exercise 3", "Parameter server against all-reduce: answer the four questions in "
                       "pairs, then compare with the α–β round times and the failure runs."),
    (15, "Exercise 4", "Gradients or parameters: pairs argue both architectures; show the "
                       "chapter's figure of models apart and together."),
    (15, "Exercise 5", "Gossip learning: students write the active and passive threads on "
                       "paper, then compare with the sheet's and Ormándi et al.'s variants."),
    (15, "Exercise 6", "Count the messages (self-check), then sketch two nodes' loss curves "
                       "before showing the run's."),
    (5, "Wrap-up", "Collect the common mistakes seen; assign the workbook's longer tasks "
                   "as homework."),
)


def markdown_text(text: str) -> str:
    """``text`` with Markdown's markup characters escaped, so that it reads as written."""
    return "".join("\\" + ch if ch in "\\`*_[]<>#|" else ch for ch in str(text))


def session_minutes() -> int:
    """The session's total length in minutes (the page checks it is 90)."""
    return sum(minutes for minutes, _, _ in SESSION_PLAN)


@dataclass(frozen=True)
class Mistake:
    """A mistake class, where it is named (``"self-check"`` or ``"workbook"``) and its hint."""

    exercise: int
    source: str
    name: str
    hint: str


def _literal(node) -> str | None:
    """The text of a string literal, or of an f-string with its fields as "…"."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "…" for v in node.values)
    return None


def _pairs(tree: ast.AST):
    """(node, mistake, hint) for every literal mistake/hint pair in ``tree``, in source order."""
    for node in sorted((n for n in ast.walk(tree) if isinstance(n, (ast.Call, ast.Tuple))),
                       key=lambda n: (n.lineno, n.col_offset)):
        if isinstance(node, ast.Call):
            words = {k.arg: _literal(k.value) for k in node.keywords if k.arg}
            if words.get("mistake") and words.get("hint"):
                yield node, words["mistake"], words["hint"]
        elif isinstance(node, ast.Tuple) and len(node.elts) >= 2:
            # (mistake, hint), (factor, mistake, hint) or (mistake, wrong_result, hint)
            hint = _literal(node.elts[-1])
            name = _literal(node.elts[-2]) or _literal(node.elts[0])
            if name and hint and len(name) <= 40 and len(hint) >= 15 and " " in hint:
                yield node, name, hint


def _top_level_owner(tree: ast.Module):
    """A map from each node to the name of the top-level function it lies in."""
    owner = {}
    for top in tree.body:
        if isinstance(top, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(top):
                owner[node] = top.name
    return owner


def _words(stem: str) -> list[str]:
    return [w for w in stem.split("_") if len(w) >= 4]


def workbook_mistakes(check_path: Path | None = None) -> list[Mistake]:
    """The mistakes the workbook's checks name, per exercise, in source order, each once."""
    found: list[Mistake] = []
    if check_path is None:
        check_path = CHECK_DIR if CHECK_DIR.is_dir() else CHECK_MODULE
    if check_path.is_dir():
        for ex in EXERCISES:
            for page in ex.workbook:
                module = check_path / f"{page.rsplit('/', 1)[-1]}.py"
                if module.is_file():
                    tree = ast.parse(module.read_text(encoding="utf-8"))
                    found += [Mistake(ex.number, "workbook", m, h) for _, m, h in _pairs(tree)]
    elif check_path.is_file():
        tree = ast.parse(check_path.read_text(encoding="utf-8"))
        owner = _top_level_owner(tree)
        stems = {ex.number: [w for page in ex.workbook
                             for w in _words(page.rsplit("/", 1)[-1].split("_", 1)[-1])]
                 for ex in EXERCISES}
        for node, m, h in _pairs(tree):
            function = owner.get(node, "")
            number = next((n for n, words in stems.items()
                           if any(w in function for w in words)), None)
            if number is not None:
                found.append(Mistake(number, "workbook", m, h))
    seen, unique = set(), []
    for mistake in found:
        key = (mistake.exercise, mistake.name)
        if mistake.name not in GENERIC and key not in seen:
            seen.add(key)
            unique.append(mistake)
    return unique


def selfcheck_mistakes(number: int) -> list[Mistake]:
    """The mistakes exercise ``number``'s self-check names: its named values or wrong options."""
    number = exercise(number).number
    logic = selfcheck.for_exercise(number).logic
    if isinstance(logic, selfcheck.NumericCheck):
        return [Mistake(number, "self-check", f"answers {value:,.6g} {logic.unit}", message)
                for value, message in logic.mistakes]
    return [Mistake(number, "self-check", f"picks “{text}”", why)
            for text, correct, why in logic.options if not correct]


def common_mistakes() -> dict[int, list[Mistake]]:
    """Every exercise's mistakes: the self-check's first, then the workbook's."""
    workbook = workbook_mistakes()
    return {ex.number: selfcheck_mistakes(ex.number)
            + [m for m in workbook if m.exercise == ex.number] for ex in EXERCISES}
