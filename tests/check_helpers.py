"""Helpers of the workbook checks' contract tests: a check's calls, a failure's lines."""


def calls_of(check_fn, right):
    """The arguments of every call ``check_fn`` makes to a right solution, in order."""
    calls = []

    def spy(*args):
        calls.append(args)
        return right(*args)

    result = check_fn(spy)
    assert result.passed, result.feedback
    return calls


def lines(result):
    """A failed check's feedback, line by line."""
    assert not result.passed
    return result.feedback.splitlines()
