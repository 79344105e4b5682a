"""FedAvg with a sampled cohort per round, and local epochs (issue #24)."""

import numpy as np
import pytest
import torch

from dmlbook import federated
from dmlbook.engine import NodeData, Nodes, seeded_generator
from dmlbook.models import make_model

KW = dict(rounds=4, local_steps=2, lr=0.1, batch_size=8, progress=False)
P = 2410  # the digits MLP's parameters


def test_no_cohort_is_bit_identical_to_every_client():
    """cohort_size=None is today's run; so is a cohort of every client."""
    base = federated.run_fedavg(n_clients=6, **KW)
    none = federated.run_fedavg(n_clients=6, cohort_size=None, **KW)
    assert torch.equal(base.server, none.server)
    assert base.test_acc == none.test_acc
    every = federated.run_fedavg(n_clients=6, cohort_size=6, **KW)  # the largest cohort
    assert torch.equal(base.server, every.server)
    # Pinned: the server model of that run before cohorts existed.
    assert float(base.server.double().sum()) == pytest.approx(-1.9715570394, abs=1e-4)


@pytest.mark.parametrize("k", [1, 3, 7])
def test_cohort_ledger_counts_only_the_cohort(k):
    n, rounds = 10, KW["rounds"]
    run = federated.run_fedavg(n_clients=n, cohort_size=k, **KW)
    c = run.ledger.columns()
    assert run.ledger.totals().sent == rounds * (k + k)  # downloads + uploads
    assert run.upload_bytes == rounds * k * P * 4
    assert int(c["nbytes"].sum()) == rounds * 2 * k * P * 4
    for r in range(1, rounds + 1):
        down = c["receiver"][(c["round"] == r) & (c["sender"] == n)]
        up = c["sender"][(c["round"] == r) & (c["receiver"] == n)]
        assert len(set(down.tolist())) == k and sorted(down) == sorted(up)
        assert down.max() < n


def test_cohorts_are_seeded_and_vary_over_rounds():
    kw = dict(n_clients=20, cohort_size=5, rounds=6, local_steps=1, progress=False)
    a = federated.run_fedavg(seed=3, **kw)
    b = federated.run_fedavg(seed=3, **kw)
    c = federated.run_fedavg(seed=4, **kw)

    def cohorts(run):
        col = run.ledger.columns()
        down = col["sender"] == 20
        return [tuple(sorted(col["receiver"][down & (col["round"] == r)])) for r in range(1, 7)]

    assert cohorts(a) == cohorts(b) and torch.equal(a.server, b.server)
    assert cohorts(a) != cohorts(c)
    assert len(set(cohorts(a))) > 1


def test_server_averages_the_cohort_updates_only():
    """One round by hand: the sampled clients train on their own data, the server adds their mean."""
    n, k = 8, 3
    seen = {}

    def aggregate(server, payloads, sizes):
        seen["payloads"], seen["sizes"] = payloads, sizes
        return server + payloads.mean(0)

    run = federated.run_fedavg(n_clients=n, cohort_size=k, rounds=1, local_steps=2, lr=0.1,
                               batch_size=8, aggregate=aggregate, progress=False)
    c = run.ledger.columns()
    cohort = torch.as_tensor(np.sort(c["receiver"][c["sender"] == n]))
    assert seen["payloads"].shape == (k, P)
    # Redo it: the same initial model, the cohort's rows of the batches' stream.
    from dmlbook.engine import prepare
    setup = prepare("mlp", n, seed=0)
    clients = Nodes(setup.module, k)
    x0 = clients.params[0].clone()
    gen = seeded_generator(0)
    for _ in range(2):
        clients.sgd_step(*setup.node_data.batch(gen, 8, cohort), 0.1)
    assert torch.allclose(seen["payloads"], clients.params - x0, atol=1e-6)
    assert torch.equal(seen["sizes"], setup.node_data.sizes[cohort])
    assert torch.allclose(run.server, x0 + (clients.params - x0).mean(0), atol=1e-6)


def test_cohort_fedavg_learns():
    run = federated.run_fedavg(n_clients=50, cohort_size=10, rounds=15, local_steps=5,
                               lr=0.1, progress=False)
    assert run.test_acc[-1] > run.test_acc[0] + 0.3


@pytest.mark.parametrize("bad", [0, 11, -1, 2.5, True, "3"])
def test_bad_cohort_size(bad):
    with pytest.raises(ValueError, match=r"cohort_size.*1 to n_clients \(10\)"):
        federated.run_fedavg(n_clients=10, cohort_size=bad, rounds=1)


def test_bad_local_epochs():
    with pytest.raises(ValueError, match="local_epochs"):
        federated.run_fedavg(n_clients=4, local_epochs=0, rounds=1)


def test_epoch_indices_cover_each_example_once_per_pass():
    X = torch.arange(23.0)[:, None]
    nd = NodeData(X, torch.zeros(23, dtype=torch.long), [range(0, 5), range(5, 15), range(15, 23)])
    idx, active = nd.epoch_indices(seeded_generator(0), 4, torch.tensor([2, 0, 1]))
    assert idx.shape == (3, 3, 4)  # the largest node (10 examples) takes 3 batches of 4
    assert active.tolist() == [[True] * 3, [True] * 3, [False, False, True]]
    for row, (lo, hi) in enumerate([(15, 23), (0, 5), (5, 15)]):
        steps = int(active[:, row].sum())
        taken = idx[:steps, row].flatten().tolist()
        m = hi - lo
        assert sorted(taken[:m]) == list(range(lo, hi))  # each example once ...
        assert taken[m:] == taken[:len(taken) - m]  # ... the last batch filled from the start


def test_local_epochs_take_one_shuffled_pass():
    """50 examples, batch 10, one epoch: 5 steps, each example once (pfl's protocol)."""
    n = 6
    from dmlbook.engine import prepare
    setup = prepare("mlp", n, seed=0)
    seen = []

    class Spy(Nodes):
        def sgd_step(self, X, y, lr, active=None):
            seen.append((X.clone(), active))
            return super().sgd_step(X, y, lr, active)

    clients = Spy(setup.module, n)
    federated.local_training(clients, setup.node_data, None, seeded_generator(0), batch_size=10,
                             lr=0.1, local_steps=99, local_epochs=1)
    sizes = setup.node_data.sizes
    assert len(seen) == -(-int(sizes.max()) // 10)
    for i in range(n):
        rows = [X[i] for X, active in seen if active is None or active[i]]
        got = torch.cat(rows)[:int(sizes[i])]
        own = setup.node_data.X[int(setup.node_data.offsets[i]):][:int(sizes[i])]
        assert sorted(map(tuple, got.tolist())) == sorted(map(tuple, own.tolist()))


def test_local_epochs_run_and_learn():
    run = federated.run_fedavg(n_clients=20, cohort_size=5, rounds=6, local_epochs=1,
                               batch_size=10, lr=0.1, progress=False)
    assert run.test_acc[-1] > run.test_acc[0] + 0.3
    assert run.ledger.totals().sent == 6 * 10


def test_local_epochs_leave_a_client_alone_once_its_pass_is_done():
    """Clients of 10 and 30 examples, batch 10: the first takes one step, the second three."""
    from dmlbook import data
    d = data.load_digits(seed=0)
    nd = NodeData(d.X_train, d.y_train, [range(0, 10), range(10, 40)])
    clients = Nodes(make_model("mlp", seed=0), 2)
    x0 = clients.params.clone()
    federated.local_training(clients, nd, None, seeded_generator(0), batch_size=10, lr=0.1,
                             local_steps=99, local_epochs=1)
    idx, _ = nd.epoch_indices(seeded_generator(0), 10, torch.arange(2))
    alone = Nodes(make_model("mlp", seed=0), 1)
    alone.sgd_step(nd.X[idx[0, :1]], nd.y[idx[0, :1]], 0.1)  # client 0's only batch
    assert torch.allclose(clients.params[0], alone.params[0], atol=1e-7)
    assert not torch.allclose(clients.params[1], x0[1])


def test_local_epochs_are_bounded_by_the_steps_they_take():
    """A pass of batch 1 over ~360 examples is ~360 steps: counted against MAX_NODE_STEPS."""
    with pytest.raises(ValueError, match="local_epochs.*MAX_NODE_STEPS"):
        federated.run_fedavg(n_clients=4, local_epochs=3000, batch_size=1, rounds=100,
                             progress=False)

