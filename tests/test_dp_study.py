"""Exercise 3's scenario and seeded runs, ex1-3's predictions, and ex2's LSTM arithmetic."""

import numpy as np
import pytest
import torch

from dmlbook import costs, dp_study, questions_ex1_3 as questions
from dmlbook.dp_study import SCENARIO


def test_data_parallel_round_is_the_averaged_step():
    x = np.array([1.0, 2.0])
    g = np.array([[1.0, 0.0], [3.0, 2.0]])
    assert np.allclose(dp_study.data_parallel_round(x, g, 0.5), [0.0, 1.5])
    with pytest.raises(ValueError, match="grads"):
        dp_study.data_parallel_round(x, np.ones((2, 3)), 0.1)


def test_softmax_gradient_matches_autograd():
    rng = np.random.default_rng(0)
    X, y, W = rng.normal(size=(5, 4)), np.array([0, 2, 1, 2, 0]), rng.normal(size=(4, 3))
    Wt = torch.tensor(W, requires_grad=True)
    torch.nn.functional.cross_entropy(torch.tensor(X) @ Wt, torch.tensor(y)).backward()
    assert np.allclose(dp_study.softmax_gradient(W, X, y), Wt.grad.numpy())


def test_the_scenario_names_its_assumptions():
    text = SCENARIO.describe_assumptions()
    assert f"learning rate {SCENARIO.lr:g}" in text
    assert SCENARIO.assumptions == dict(detect_rounds=2, ring_rebuild_rounds=5,
                                        failover_rounds=2)
    assert len(SCENARIO.seeds) >= 3  # claims over seeds need at least three


def test_failure_case_runs_the_named_case_under_the_assumptions():
    run = dp_study.failure_case("PS (one server), the server crashes, no failover",
                                n_workers=3, rounds=4, crash_round=2)
    assert run.updated == [False, True, False, False, False]
    assert dp_study.stalls(run) == 3
    with pytest.raises(ValueError, match="label"):
        dp_study.failure_case("the moon falls")
    with pytest.raises(ValueError, match="seeds"):
        dp_study.failure_runs(seeds=range(21))


def test_lstm_parameter_counts():
    assert costs.lstm_parameter_count() == 4_950_544
    assert costs.lstm_parameter_count(projection=192) == 4_294_160
    # Without peepholes: three vectors of 256 fewer.
    assert costs.lstm_parameter_count(peepholes=False) == 4_950_544 - 768
    with pytest.raises(ValueError, match="hidden"):
        costs.lstm_parameter_count(hidden=0)
    with pytest.raises(ValueError, match="peepholes"):
        costs.lstm_parameter_count(peepholes="yes")


def test_dl_traffic_like_for_like():
    cmp = costs.compare_download_costs(4_950_544, rounds=1000, clients_per_round=200,
                                       usd_per_gib=0.03)
    assert cmp.dl_over_fl_traffic == 4  # 200 * 8 transfers against 200 down + 200 up
    assert cmp.dl_bytes == 8 * cmp.fl_bytes


def test_predictions_and_checks_build_with_one_right_answer():
    step = questions.ex1_step(0.0148)
    right = [i for i, (_, ok, _) in enumerate(step.logic.options) if ok]
    assert right == [2]  # between 10 ms and 100 ms
    assert questions.ex1_symmetric(22_033).logic.feedback("22033")[0] == "right"
    for n in (1, 3, 4):
        check = questions.ex3_subquestion(n)
        assert sum(ok for _, ok, _ in check.logic.options) == 1
    with pytest.raises(ValueError, match="number"):
        questions.ex3_subquestion(2)
    dl = questions.ex2_dl_factor(4.0, 200, 8)
    assert dl.logic.feedback("8")[0] != "right"  # downloads only: the like-for-like slip


def test_failure_run_rejects_a_server_failure_without_a_server_and_is_shared():
    with pytest.raises(ValueError, match="failure"):
        dp_study.failure_run("ring", "server", 3, 3, 1)
    with pytest.raises(ValueError, match="failure"):
        dp_study.failure_run("ps", "meteor", 3, 3, 1)
    a = dp_study.failure_run("naive", "worker", 3, 3, 1)
    assert dp_study.failure_run("naive", "worker", 3, 3, 1) is a  # the explorer reuses it
