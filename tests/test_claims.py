import numpy as np
import pytest

from dmlbook.claims import ClaimError, claim, claims_made, reset


def test_true_claim_is_recorded():
    reset()
    assert claim("two is more than one", 2 > 1)
    assert claim("all positive", np.array([1, 2, 3]) > 0)
    assert claims_made() == ["two is more than one", "all positive"]


def test_false_claim_names_itself_and_its_evidence():
    with pytest.raises(ClaimError, match="balanced sampling reduces.*bal=0.3"):
        claim("balanced sampling reduces the share of silent nodes", 0.3 < 0.2,
              bal=0.3, uni=0.2)


def test_partly_false_array_and_empty_array_fail():
    with pytest.raises(ClaimError):
        claim("every node improves", np.array([True, False]))
    with pytest.raises(ClaimError):
        claim("every node improves", np.array([], dtype=bool))


@pytest.mark.parametrize("condition", [1, 0.5, "yes", None, np.array([1.0])])
def test_condition_must_be_a_comparison(condition):
    with pytest.raises(ValueError, match="condition"):
        claim("a sentence", condition)


@pytest.mark.parametrize("statement", ["", "   ", None, 3])
def test_statement_must_be_a_sentence(statement):
    with pytest.raises(ValueError, match="statement"):
        claim(statement, True)
