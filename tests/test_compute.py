import pytest
import torch

from dmlbook import compute, data, models


def test_sgd_step_descends_on_a_real_batch():
    X, y = data.digits_lenet_batch(16, seed=0)
    model = models.LeNet()
    losses = [compute.sgd_step(model, X, y, lr=0.05) for _ in range(15)]
    assert losses[-1] < losses[0]


def test_time_sgd_step_reports_positive_times():
    X, y = data.digits_lenet_batch(8, seed=0)
    timing = compute.time_sgd_step(models.LeNet(), X, y, repeats=3, warmup=1)
    assert 0 < timing.min_s <= timing.median_s
    assert timing.repeats == 3 and timing.batch_size == 8
    assert timing.threads == torch.get_num_threads()


@pytest.mark.parametrize("kw, param", [({"lr": 0}, "lr"), ({"repeats": 0}, "repeats"),
                                       ({"warmup": -1}, "warmup")])
def test_time_sgd_step_rejects_bad_input(kw, param):
    X, y = data.digits_lenet_batch(4, seed=0)
    with pytest.raises(ValueError, match=param):
        compute.time_sgd_step(models.LeNet(), X, y, **kw)
