"""Issue #27 part 2: silent nonsense becomes a clear error that names the caller's parameter.

Datasets, custom models, NaN or inf from finite input, and errors that used to
name the wrong thing or come out raw (StopIteration, KeyError, TraitError,
OSError). Small and fast.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

from dmlbook import (centralized, compression, data, dpsgd, engine, explore, federated, gossip,
                     models, widgets)

TINY = data.synthetic_logistic(40, 4, seed=0)


# --- datasets -----------------------------------------------------------------


@pytest.mark.parametrize("fraction", [1e-4, 0.9999])
def test_load_digits_refuses_an_empty_train_or_test_set(fraction):
    with pytest.raises(ValueError, match="test_fraction must hold out at least one"):
        data.load_digits(test_fraction=fraction)


def _dataset(**change):
    parts = dict(X_train=torch.zeros(6, 3), y_train=torch.tensor([0, 1, 2, 0, 1, 2]),
                 X_test=torch.zeros(2, 3), y_test=torch.tensor([0, 1]), num_classes=3)
    return data.Dataset(**{**parts, **change})


@pytest.mark.parametrize("change, name", [
    (dict(X_test=torch.zeros(0, 3), y_test=torch.zeros(0, dtype=torch.int64)), "X_test"),
    (dict(X_test=torch.zeros(2, 4)), "X_test"),
    (dict(y_train=torch.tensor([0, 1, 2, 0, 1, 3])), "y_train"),
    (dict(y_test=torch.tensor([0, -1])), "y_test"),
    (dict(y_train=torch.zeros(5, dtype=torch.int64)), "y_train"),
    (dict(y_train=torch.zeros(6)), "y_train"),
    (dict(X_train=torch.zeros(6, 3, dtype=torch.int64)), "X_train"),
    (dict(X_train=torch.full((6, 3), math.nan)), "X_train"),
    (dict(num_classes=1), "num_classes"),
    (dict(num_classes=np.bool_(True)), "num_classes"),
])
def test_dataset_validates_widths_labels_and_dtypes(change, name):
    with pytest.raises(ValueError, match=name):
        _dataset(**change)


def test_dataset_converts_float64_and_int32():
    d = _dataset(X_train=torch.zeros(6, 3, dtype=torch.float64),
                 y_test=torch.tensor([0, 1], dtype=torch.int32), num_classes=np.int64(3))
    assert d.X_train.dtype == torch.float32 and d.y_test.dtype == torch.int64
    assert type(d.num_classes) is int


# --- custom models --------------------------------------------------------------

MODELS = {
    "float64": (lambda: nn.Sequential(nn.Linear(4, 2)).double(), "float32"),
    "batchnorm": (lambda: nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2)),
                  "buffers"),
    "wrong width": (lambda: nn.Sequential(nn.Linear(5, 2)), "accept dataset's examples"),
    "no parameters": (lambda: nn.Sequential(nn.Flatten()), "at least one parameter"),
    "meta": (lambda: nn.Sequential(nn.Linear(4, 2)).to("meta"), "meta device"),
    "wrong classes": (lambda: nn.Sequential(nn.Linear(4, 3)), "one score per class"),
}


@pytest.mark.parametrize("kind", list(MODELS))
@pytest.mark.parametrize("run", [
    lambda m: dpsgd.run_dpsgd(n_nodes=3, topology="complete", rounds=1, dataset=TINY, model=m,
                              progress=False),
    lambda m: federated.run_fedavg(n_clients=2, rounds=1, dataset=TINY, model=m, progress=False),
    lambda m: centralized.train_centralized(steps=1, dataset=TINY, model=m),
], ids=["run_dpsgd", "run_fedavg", "train_centralized"])
def test_a_model_the_simulators_cannot_run_is_refused_up_front(kind, run):
    build, says = MODELS[kind]
    with pytest.raises(ValueError, match="model must") as error:
        run(build())
    assert says in str(error.value)


def test_the_model_check_leaves_the_random_state_alone():
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 2))
    torch.manual_seed(7)
    before = torch.random.get_rng_state()
    assert models.check_model(model, TINY) is model
    assert torch.equal(before, torch.random.get_rng_state())


# --- NaN or inf from finite input ----------------------------------------------


def test_gossip_average_of_huge_values_is_refused_not_inf():
    with pytest.raises(ValueError, match="values must be at most"):
        gossip.gossip_average([1e308, -1e308, 1.0], cycles=3)
    result = gossip.gossip_average([1e150, -1e150, 0.0], cycles=3)
    assert np.isfinite(result.variance).all() and np.isfinite(result.values).all()


def test_gossip_average_of_one_value_names_values():
    with pytest.raises(ValueError, match="values must be a list of 2"):
        gossip.gossip_average([5.0])


def test_variance_factor_of_nodes_that_already_agree():
    result = gossip.gossip_average([2.0, 2.0, 2.0], cycles=3)
    with pytest.raises(ValueError, match="agree from the start"):
        gossip.variance_factor_per_cycle(result, 2)
    moving = gossip.gossip_average([0.0, 1.0, 5.0, 2.0], cycles=4)
    assert 0 <= gossip.variance_factor_per_cycle(moving, 3) < 1


@pytest.mark.parametrize("time", [math.nan, math.inf, -1.0])
def test_event_queue_refuses_times_that_break_its_order(time):
    queue = gossip.EventQueue()
    with pytest.raises(ValueError, match="time must be a finite number"):
        queue.push(time, "wake", 0)
    assert len(queue) == 0


def test_top_k_keep_refuses_a_nan_reference():
    with pytest.raises(ValueError, match="reference must have finite entries"):
        compression.top_k_keep(torch.ones(4), 0.5, torch.tensor([math.nan, 0.0, 0.0, 0.0]))


def test_faults_and_node_data_refuse_negative_indices():
    from dmlbook import faults

    with pytest.raises(ValueError, match="receivers must be node ids"):
        faults.Faults().delivered(1, [-1], 4)
    with pytest.raises(ValueError, match="receivers must be node ids"):
        faults.Faults().delivered(1, [4], 4)
    with pytest.raises(ValueError, match="parts must hold example indices"):
        engine.NodeData(TINY.X_train, TINY.y_train, [[0, 1], [-1, 2]])


def test_flat_model_refuses_a_vector_of_the_wrong_size():
    model = nn.Linear(4, 2)
    flat = engine.FlatModel(model)
    with pytest.raises(ValueError, match="flat must hold the model's 10 parameters"):
        flat.load_into(model, torch.zeros(9))
    flat.load_into(model, torch.arange(10.0))
    assert model.bias.tolist() == [8.0, 9.0]


# --- errors that named the wrong thing -----------------------------------------


@pytest.mark.parametrize("method, level", [("topk", 5), ("quantize", 17), ("none", 8),
                                           ("quantize_per_tensor", 0), ("topk_keep", 2.0)])
def test_fedavg_and_compressed_bytes_name_level(method, level):
    with pytest.raises(ValueError, match="level"):
        federated.run_fedavg(method=method, level=level, progress=False)
    with pytest.raises(ValueError, match="level"):
        compression.compressed_bytes(1000, method, level)


def test_compressed_bytes_agrees_with_compress():
    x = torch.randn(1000)
    for method, level in [("topk", 0.05), ("quantize", 4), ("none", None), ("topk", None)]:
        assert compression.compressed_bytes(1000, method, level) == \
            compression.compress(x, method, level).nbytes


def test_centralized_baseline_names_result():
    result = gossip.GossipLearningResult()
    result.steps = np.zeros(3, dtype=np.int64)
    with pytest.raises(ValueError, match="result's nodes must have taken"):
        gossip.centralized_baseline(result)


def test_decentralized_exchange_takes_the_largest_seed():
    run = federated.run_decentralized_exchange(n_nodes=3, rounds=1, topology="ring",
                                               model="logreg", seed=2**32 - 1, progress=False)
    assert len(run.history.test_loss) >= 1


def test_panels_name_what_is_wrong():
    with pytest.raises(ValueError, match="key must be one of"):
        explore.panel("ex7")
    with pytest.raises(ValueError, match="bits_per_param must be one of"):
        explore.panel("ex1", bits_per_param=12)
    with pytest.raises(ValueError, match="name must be a control of panel 'ex1'"):
        explore.SPECS["ex1"].control("nodes")
    with pytest.raises(ValueError, match="compress_level"):
        widgets.figure_png(Figure(figsize=(1, 1)), compress_level=42)


def test_ex5_panel_explains_a_delay_longer_than_the_simulated_time():
    spec = explore.SPECS["ex5"]
    status, message = spec.evaluate({**spec.defaults(), "delay": "5", "until": "2"})
    assert status == "error"
    assert message.startswith("message delay:") and "simulated time" in message
    assert "check_number" not in message and "Error" not in message
