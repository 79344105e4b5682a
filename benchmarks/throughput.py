"""Client SGD steps per second at the sheet's LeNet: dmlbook, pfl, Flower, gossipy (issue #24 part 2).

    .venv-peers/bin/python benchmarks/throughput.py            # the table
    .venv-peers/bin/python benchmarks/throughput.py --quick    # fewer steps, to try it

One client SGD step: forward and backward of ``dmlbook.models.LeNet`` (85,098
parameters, 3x32x32 inputs: the model with that many parameters takes
CIFAR-shaped images) on a batch of 10, and the parameter update, at lr 0.1.
Each peer does plain local SGD steps on that model through its own
machinery, with one torch thread per process:

* dmlbook: ``Nodes(LeNet, n)`` and ``sgd_step``, n clients in one batched step
  (10 and 100 clients);
* pfl 0.6.0: ``FederatedAveraging`` on a ``SimulatedBackend``, every client of
  the cohort each round, ``local_num_steps`` steps of batch 10; seconds per
  round in steady state (first round excluded), server and aggregation
  included, no evaluation;
* Flower 1.42: ``run_simulation`` with a ``ClientApp`` that takes the steps and
  returns its arrays and a ``ServerApp`` running ``FedAvg``; steady state from
  the end of round 1 (Ray's start-up and the actors' first round excluded);
  one CPU per client, so Ray runs two clients at once on the two cores;
* gossipy: one ``GossipNode`` per client with a ``TorchModelHandler`` (batch
  10, ``local_epochs=0``: one step on a random batch per ``_update``), the
  nodes stepped in turn as its simulator wakes them.

Prints a Markdown table and the machine (CPU model, cores, threads, load).
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)

from dmlbook.engine import Nodes  # noqa: E402
from dmlbook.models import LeNet, count_parameters  # noqa: E402
from peers import machine, with_pfl_methods  # noqa: E402

SEED, BATCH, LR = 0, 10, 0.1


def lenet() -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        return LeNet()


def client_data(n_clients: int, steps: int):
    """Every client's ``steps * 10`` random CIFAR-shaped examples: X (n, m, 3, 32, 32), y (n, m)."""
    g = torch.Generator().manual_seed(SEED)
    m = steps * BATCH
    return (torch.randn(n_clients, m, 3, 32, 32, generator=g),
            torch.randint(0, 10, (n_clients, m), generator=g))


def dmlbook_rate(n: int, steps: int, threads: int = 1) -> float:
    """Client steps per second of the engine on ``threads`` torch threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _dmlbook_rate(n, steps)
    finally:
        torch.set_num_threads(before)


def _dmlbook_rate(n: int, steps: int) -> float:
    X, y = client_data(n, steps)
    nodes = Nodes(lenet(), n)
    nodes.sgd_step(X[:, :BATCH], y[:, :BATCH], LR)  # warm-up
    start = time.perf_counter()
    for k in range(steps):
        nodes.sgd_step(X[:, k * BATCH:(k + 1) * BATCH], y[:, k * BATCH:(k + 1) * BATCH], LR)
    return n * steps / (time.perf_counter() - start)


def pfl_rate(n: int, steps: int, rounds: int = 3) -> float:
    import contextlib
    import io

    from pfl.aggregate.simulate import SimulatedBackend
    from pfl.aggregate.weighting import WeightByUser
    from pfl.algorithm import FederatedAveraging, NNAlgorithmParams
    from pfl.callback.base import TrainingProcessCallback
    from pfl.data.dataset import Dataset
    from pfl.data.federated_dataset import FederatedDataset
    from pfl.data.sampling import get_user_sampler
    from pfl.hyperparam import NNEvalHyperParams, NNTrainHyperParams
    from pfl.metrics import Metrics
    from pfl.model.pytorch import PyTorchModel

    logging.getLogger("pfl").setLevel(logging.WARNING)
    X, y = client_data(n, steps)
    net = with_pfl_methods(lenet())
    fed = FederatedDataset(lambda u: Dataset([X[u], y[u]], user_id=u),
                           get_user_sampler("minimize_reuse", list(range(n))))
    model = PyTorchModel(model=net, local_optimizer_create=torch.optim.SGD,
                         central_optimizer=torch.optim.SGD(list(net.parameters()), 1.0))
    stamps = []

    class Stamp(TrainingProcessCallback):
        def after_central_iteration(self, aggregate_metrics, model, *, central_iteration):
            stamps.append(time.perf_counter())
            return False, Metrics()

    with contextlib.redirect_stdout(io.StringIO()):
        FederatedAveraging().run(
            algorithm_params=NNAlgorithmParams(central_num_iterations=rounds,
                                               evaluation_frequency=rounds + 1000,
                                               train_cohort_size=n, val_cohort_size=0),
            backend=SimulatedBackend(training_data=fed, val_data=None,
                                     postprocessors=[WeightByUser()]),
            model=model,
            model_train_params=NNTrainHyperParams(local_num_epochs=None, local_learning_rate=LR,
                                                  local_batch_size=BATCH, local_num_steps=steps),
            model_eval_params=NNEvalHyperParams(local_batch_size=BATCH), callbacks=[Stamp()])
    return n * steps * (len(stamps) - 1) / (stamps[-1] - stamps[0])


def flower_rate(n: int, steps: int, rounds: int = 3) -> float:
    from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp
    from flwr.serverapp import Grid, ServerApp
    from flwr.serverapp.strategy import FedAvg
    from flwr.simulation import run_simulation

    logging.getLogger("flwr").setLevel(logging.WARNING)
    X, y = client_data(n, steps)
    start_model = lenet()
    client_app, server_app = ClientApp(), ServerApp()
    stamps = []

    @client_app.train()
    def train(msg: Message, context: Context):
        i = int(context.node_config["partition-id"])
        model = copy.deepcopy(start_model)
        model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
        opt = torch.optim.SGD(model.parameters(), lr=LR)
        for k in range(steps):
            loss = torch.nn.functional.cross_entropy(model(X[i, k * BATCH:(k + 1) * BATCH]),
                                                     y[i, k * BATCH:(k + 1) * BATCH])
            opt.zero_grad()
            loss.backward()
            opt.step()
        reply = RecordDict({"arrays": ArrayRecord(model.state_dict()),
                            "metrics": MetricRecord({"num-examples": 1})})
        return Message(content=reply, reply_to=msg)

    def stamp(server_round: int, arrays: ArrayRecord):
        stamps.append(time.perf_counter())
        return MetricRecord({})

    @server_app.main()
    def main(grid: Grid, context: Context):
        FedAvg(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=n,
               min_available_nodes=n).start(grid=grid, initial_arrays=ArrayRecord(
                   start_model.state_dict()), num_rounds=rounds, evaluate_fn=stamp)

    run_simulation(server_app=server_app, client_app=client_app, num_supernodes=n,
                   backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}})
    # stamps: after the initial evaluation, then after each round; from the end of round 1.
    return n * steps * (rounds - 1) / (stamps[-1] - stamps[1])


def gossipy_rate(n: int, steps: int) -> float:
    from peers import import_gossipy

    g = import_gossipy()
    X, y = client_data(n, steps)
    start_state = lenet().state_dict()

    class Net(g.TorchModel):
        def __init__(self):
            super().__init__()
            self.net = lenet()

        def init_weights(self):
            self.net.load_state_dict(start_state)

        def forward(self, x):
            return self.net(x)

    net = g.StaticP2PNetwork(n, topology=None)
    nodes = []
    for i in range(n):
        handler = g.TorchModelHandler(
            net=Net(), optimizer=torch.optim.SGD, optimizer_params={"lr": LR},
            criterion=torch.nn.functional.cross_entropy, local_epochs=0, batch_size=BATCH,
            create_model_mode=g.CreateModelMode.MERGE_UPDATE)
        nodes.append(g.GossipNode(idx=i, data=((X[i], y[i]), None), round_len=100,
                                  model_handler=handler, p2p_net=net, sync=True))
        nodes[-1].init_model()
    for node in nodes:  # warm-up
        node.model_handler._update(node.data[0])
    start = time.perf_counter()
    for _ in range(steps):
        for node in nodes:
            node.model_handler._update(node.data[0])
    return n * steps / (time.perf_counter() - start)



def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer clients and steps")
    parser.add_argument("--only", choices=("dmlbook", "pfl", "flower", "gossipy"),
                        action="append", help="only these simulators (repeatable)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    steps = 2 if args.quick else 10
    peers = args.only or ["dmlbook", "pfl", "flower", "gossipy"]
    cores = os.cpu_count() or 1
    cases = [("dmlbook", n, lambda n=n: dmlbook_rate(n, steps)) for n in (10, 100)] + [
        ("pfl", 10, lambda: pfl_rate(10, steps)),
        ("Flower", 10, lambda: flower_rate(10, steps)),
        ("gossipy", 10, lambda: gossipy_rate(10, steps))]
    if cores > 1:  # Flower runs one actor a core; dmlbook spreads its nodes over as many threads
        cases[2:2] = [(f"dmlbook, {cores} threads", n,
                       lambda n=n: dmlbook_rate(n, steps, threads=cores)) for n in (10, 100)]
    if args.quick:
        cases = [c for c in cases if c[1] == 10]
    print(f"# {machine()}", flush=True)
    print(f"# LeNet, {count_parameters(lenet()):,} parameters, 3x32x32 inputs, batch {BATCH}, "
          f"lr {LR}; {steps} steps per client", flush=True)
    print("| simulator | clients | client SGD steps / s |\n|---|---:|---:|", flush=True)
    for name, n, rate in cases:
        if name.split(",")[0].lower() in peers:
            print(f"| {name} | {n} | {rate():.1f} |", flush=True)
    print(f"# load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
