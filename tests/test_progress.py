"""dmlbook.progress: a bar for long cells in a live kernel only."""

import pytest

from dmlbook import progress


def test_steps_yields_everything_and_is_silent_outside_a_kernel(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    assert not progress.shown()  # pytest is no IPython kernel
    assert list(progress.steps(range(4), "seeds")) == [0, 1, 2, 3]
    assert list(progress.steps(iter("ab"), "letters", total=2)) == ["a", "b"]


def test_steps_is_silent_in_the_book_build(monkeypatch):
    monkeypatch.setenv(progress.STATIC_BUILD_ENV, "1")
    assert not progress.shown()


@pytest.mark.parametrize("kw, says", [({"desc": ""}, "desc"), ({"desc": 3}, "desc"),
                                      ({"desc": "x", "total": -1}, "total"),
                                      ({"desc": "x", "total": 1.5}, "total"),
                                      ({"desc": "x", "total": True}, "total")])
def test_bad_arguments_are_named(kw, says):
    with pytest.raises(ValueError, match=says):
        list(progress.steps(range(2), **kw))
