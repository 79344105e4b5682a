"""Claims over seeds (issue 21, item 1): claim_seeds and Spread."""

import numpy as np
import pytest

from dmlbook.claims import (MAX_SEEDS, MIN_SEEDS, ClaimError, Spread, claim_seeds, claims_made,
                            reset)


def test_claim_holding_in_every_seed_returns_the_phrase_and_is_recorded():
    reset()
    assert claim_seeds("gossip beats SGD", [True] * 5) == "in 5 of 5 seeds"
    assert claim_seeds("numpy bools count", np.array([1.0, 2, 3]) > 0) == "in 3 of 3 seeds"
    assert claims_made() == ["gossip beats SGD", "numpy bools count"]


def test_true_on_seed_zero_but_false_on_another_seed_fails():
    """The failure issue 21 found: a direction that holds in the run made, not over seeds."""
    gossip, sgd = [0.81, 0.80, 0.81], [0.77, 0.82, 0.79]
    holds = [g > c for g, c in zip(gossip, sgd)]
    assert holds[0]  # seed 0 alone would have passed
    with pytest.raises(ClaimError) as err:
        claim_seeds("gossip beats centralized SGD", holds, gossip=gossip, sgd=sgd)
    text = str(err.value)
    assert "gossip beats centralized SGD" in text
    assert "2 of 3 seeds" in text and "[1]" in text  # the failing seed index
    assert "sgd=[0.77, 0.82, 0.79]" in text  # the evidence


def test_at_least_allows_a_stated_minority_and_says_so():
    assert claim_seeds("mostly", [True, True, False, True, True], at_least=4) == "in 4 of 5 seeds"
    with pytest.raises(ClaimError, match=r"fails at seed index\(es\) \[2, 4\]"):
        claim_seeds("mostly", [True, True, False, True, False], at_least=4)


@pytest.mark.parametrize("holds", [[True, True], [True] * (MAX_SEEDS + 1), [1, 1, 1],
                                   [True, "yes", True], "TTT", None, 3, (b for b in [True] * 3)])
def test_holds_must_be_three_or_more_bools(holds):
    with pytest.raises(ValueError, match="holds"):
        claim_seeds("a sentence", holds)


@pytest.mark.parametrize("at_least", [0, 4, -1, True, 2.0, "3"])
def test_at_least_is_bounded_by_the_seed_count(at_least):
    with pytest.raises(ValueError, match="at_least"):
        claim_seeds("a sentence", [True] * 3, at_least=at_least)


@pytest.mark.parametrize("statement", ["", " ", None, 3])
def test_statement_must_be_a_sentence(statement):
    with pytest.raises(ValueError, match="statement"):
        claim_seeds(statement, [True] * 3)


def test_min_seeds_is_three():
    assert MIN_SEEDS == 3
    claim_seeds("three is enough", [True] * 3)


def test_spread_median_range_and_text():
    s = Spread.of([0.80, 0.81, 0.82, 0.805, 0.812])
    assert (s.median, s.low, s.high, s.n) == (0.81, 0.80, 0.82, 5)
    assert str(s) == "0.81 (range 0.80–0.82 over 5 seeds)"
    assert str(Spread.of(np.array([1200, 3400, 2000]), digits=0)) == \
        "2,000 (range 1,200–3,400 over 3 seeds)"
    assert str(Spread.of([1, 2, 3, 4])).startswith("2.50 ")  # even count: the middle two's mean
    assert str(Spread.of([-0.001, 0.0, 0.001])) == "0.00 (range 0.00–0.00 over 3 seeds)"
    assert str(Spread.of([-1.5, -1.0, -0.5], digits=1)) == "-1.0 (range -1.5–-0.5 over 3 seeds)"


@pytest.mark.parametrize("values", [[1.0, 2.0], [True, False, True], ["a", "b", "c"],
                                    [1.0, float("nan"), 2.0], [1.0, float("inf"), 2.0],
                                    [[1.0, 2.0, 3.0]], None, list(range(MAX_SEEDS + 1))])
def test_spread_refuses_what_is_not_one_number_per_seed(values):
    with pytest.raises(ValueError, match="values"):
        Spread.of(values)


@pytest.mark.parametrize("digits", [-1, 11, 1.5, True])
def test_spread_digits_bounded(digits):
    with pytest.raises(ValueError, match="digits"):
        Spread.of([1, 2, 3], digits=digits)
