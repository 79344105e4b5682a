"""Every check's feedback, word for word: the named mistake, its hint, the case, the values.

A student reads the feedback, not the verdict, so a changed hint, case label or
pass summary is a changed product. The mutation runs of the checks
(benchmarks/README.md, "Mutation testing") found most surviving mutants in
these texts. tests/data/check_feedback.json holds, for every wrong solution of
test_check.py and test_check_tasks.py and for every reference solution, the
feedback it gets, and for the hostile solutions of test_check_hostile.py; each
was read when it was pinned. A run's "max difference" is rounding and differs
between CPU kernels: it is compared as a bound, not as text. After an intended
change of wording, rewrite the file with `python tests/test_check_feedback.py`
(from the repository root, in the book's .venv) and read the diff.
"""

import json
import re
import sys
from pathlib import Path

import pytest

import test_check
import test_check_hostile
import test_check_tasks
from dmlbook import allreduce, check, dpsgd, engine, federated, gossip
from dmlbook.check import guard, harness, reference

PINNED = Path(__file__).parent / "data" / "check_feedback.json"


def solutions():
    """(key, check name, the functions it is given) for every pinned feedback."""
    for name, fn, _ in test_check.WRONG:
        yield f"{name}/{fn.__name__}", name, (fn,)
    for name, fns, _ in test_check_tasks.WRONG:
        yield f"{name}/{fns[0].__name__}", name, tuple(fns)
    for name, fn in test_check_hostile.WRONG + test_check_hostile.RIGHT:
        yield f"{name}/{fn.__name__}", name, (fn,)
    for name, refs in check.CHECKS.items():
        yield f"{name}/reference", name, tuple(getattr(reference, r) for r in refs)


SOLUTIONS = list(solutions())


def feedback(name, fns):
    return getattr(check, name)(*fns).feedback


ROUNDING = re.compile(r"max difference (\d\.\de[-+]\d\d)")


def without_rounding(text):
    """The text with each "max difference" written as a bound it must keep."""
    for found in ROUNDING.findall(text):
        assert float(found) <= 1e-5, text  # the runs' own tolerance
    return ROUNDING.sub("max difference (rounding)", text)


def test_every_solution_has_pinned_feedback_and_every_pin_a_solution():
    assert set(json.loads(PINNED.read_text())) == {key for key, _, _ in SOLUTIONS}


@pytest.mark.parametrize("key, name, fns", SOLUTIONS, ids=[s[0] for s in SOLUTIONS])
def test_feedback_is_word_for_word_as_pinned(key, name, fns):
    pinned = json.loads(PINNED.read_text())[key]
    assert without_rounding(feedback(name, fns)) == without_rounding(pinned)



@pytest.mark.parametrize("name", check.CHECKS)
def test_a_check_prints_nothing_and_asks_its_runs_for_no_progress_bar(name, capfd,
                                                                      monkeypatch):
    # Its own simulator runs too: a bar in the student's notebook (an ipywidget there,
    # which no captured stream hides) is noise under the verdict.
    asked = []
    monkeypatch.setattr(guard, "GUARD_BINDINGS", False)  # the spies rebind the package
    for module in (allreduce, dpsgd, engine, federated, gossip):
        def spy(total, enabled, desc, _original=module.progress_bar):
            asked.append(enabled)
            return _original(total, enabled, desc)
        monkeypatch.setattr(module, "progress_bar", spy)
    fns = tuple(getattr(reference, r) for r in check.CHECKS[name])
    result = getattr(check, name)(*fns)
    assert result.passed and "printed" not in result.feedback
    if name not in ("participants", "binding_link", "push_pull"):  # the checks with a run
        assert asked, "no run of this check asked for a progress bar"
    assert all(enabled is False for enabled in asked), asked
    out, err = capfd.readouterr()
    assert out == "" and err == ""


if __name__ == "__main__":  # rewrite the pinned texts after an intended change of wording
    PINNED.write_text(json.dumps({key: feedback(name, fns) for key, name, fns in SOLUTIONS},
                                 indent=1, ensure_ascii=False) + "\n")
    sys.exit(0)
