"""dmlbook side by side with real peers, on the same tasks, in one run.

    make bench-peers-env          # once: .venv-peers with dmlbook, gossipy-dfl, flwr[simulation], pfl
    make bench-peers              # all sizes;  .venv-peers/bin/python benchmarks/peers.py --quick

Three comparisons, each printed as one line (task, size, both wall times,
ratio, both accuracies):

1. Gossip learning against **gossipy** (``gossipy-dfl``), 30 cycles. The
   protocols are matched by configuring gossipy to do what dmlbook does: on
   waking up (once per cycle, at a random offset), a node takes one SGD step
   on a mini-batch of its own data and pushes its model to a uniformly random
   peer; on receiving a model, it averages it with its own. Same MLP, same
   initial parameters, learning rate, batch, Δ, delay and data split. gossipy
   keeps its own machinery: one ``nn.Module`` per node, a deep copy per
   message, its discrete-time simulator and its per-node evaluation.
2. FedAvg against **Flower**'s simulation engine (Ray): a ``ClientApp`` that
   trains and returns its arrays, a ``ServerApp`` running
   ``FedAvg(fraction_train=1.0)``, ``run_simulation`` with one CPU per
   client. Same model, split, local steps, learning rate and batch.
3. D-PSGD in the stacked engine against ``dmlbook.distributed``: the same
   run as real gloo processes on this machine.
4. FedAvg against **pfl** (pfl-research 0.6.0, its PyTorch backend): pfl's
   ``FederatedAveraging`` with a ``SimulatedBackend``, every client in the
   cohort, ``local_num_steps`` local SGD steps, the server's SGD at learning
   rate 1 on the mean update (``WeightByUser``): FedAvg as dmlbook runs it.
   Same MLP and initial model, split, steps, learning rate and batch size.
   What differs: pfl takes a client's batches in order from its data, dmlbook
   draws them with replacement, so the two runs see different batches.
5. pfl on **its own benchmark's shape** (``--only pfl-cifar``): its
   image-classification baseline (cifar10_iid, simple_cnn, FedAvg) on
   CIFAR-10-shaped synthetic data, 1,000 users x 50 points, cohort 50, one
   local epoch of batch 10 at lr 0.1, server SGD at lr 1 on the mean update;
   the same initial model, split, cohorts (pfl is handed the cohorts
   ``run_fedavg(cohort_size=50)`` samples) and test set. Reported: both after
   the same rounds, and the wall-clock to a target test accuracy. What
   differs: dmlbook shuffles a client's examples at every pass, pfl takes
   them in the stored order (the split's random order, the same each time a
   user is sampled); both models lack simple_cnn's two dropout layers.

Comparisons 1 to 4 train the digits MLP (64-32-10, 2,410 parameters); 5
trains pfl's simple_cnn (1,626,442 parameters).

The last line is ``peers: min speed-up N.N× over K comparisons``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import logging
import os
import platform
import random
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# Ray's worker processes import dmlbook too.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)

from dmlbook import dpsgd, engine, federated  # noqa: E402
from dmlbook import gossip as dml_gossip  # noqa: E402

SEED = 0
GOSSIP = dict(cycles=30, lr=0.5, batch_size=32, delay_fraction=0.1, steps_per_cycle=100)
# Neither reaches 80% median accuracy in 30 cycles (one SGD step per cycle), so the
# time to 80% comes from one longer run at the smallest size.
TO_80_CYCLES = 60
FEDAVG = dict(rounds=30, local_steps=5, lr=0.1, batch_size=32)
DPSGD = dict(rounds=50, lr=0.5, batch_size=16, topology="ring", degree=2)
FULL_SIZES = {"gossip": (128, 512, 1024), "fedavg": (10, 100), "dpsgd": (4, 8, 16),
              "pfl": (10, 100, 1000)}
TASKS = ("gossip", "fedavg", "dpsgd", "pfl", "pfl-cifar")
QUICK_SIZES = {"gossip": (128,), "fedavg": (10,), "dpsgd": (4,), "pfl": (10,)}


def line(task, size, ours_s, peer_name, peer_s, ours_acc, peer_acc, extra=""):
    ratio = peer_s / ours_s
    print(f"{task:<16} {size:>6}  dmlbook {ours_s:8.2f} s  {peer_name} {peer_s:8.2f} s  "
          f"ratio {ratio:6.1f}×  acc dmlbook {ours_acc:.3f} {peer_name} {peer_acc:.3f}"
          + (f"  {extra}" if extra else ""), flush=True)
    return ratio


# --------------------------------------------------------------------------- gossipy

def import_gossipy():
    """gossipy's data module imports torchvision only for its CIFAR and
    FashionMNIST loaders, which this benchmark does not use; PyPI's torchvision
    does not import beside this machine's torch, so an empty module stands in."""
    sys.modules.setdefault("torchvision", types.ModuleType("torchvision"))
    import gossipy
    from gossipy import CACHE
    from gossipy.core import AntiEntropyProtocol, ConstantDelay, CreateModelMode, StaticP2PNetwork
    from gossipy.model import TorchModel
    from gossipy.model.handler import TorchModelHandler
    from gossipy.node import GossipNode
    from gossipy.simul import GossipSimulator, SimulationEventReceiver, SimulationReport

    gossipy.LOG.setLevel(logging.WARNING)
    return types.SimpleNamespace(**locals())


def gossipy_run(n_nodes: int, g, cycles: int) -> dict:
    """Gossip learning in gossipy, configured to dmlbook's protocol."""
    cfg = GOSSIP
    module, dataset, node_data, X_test, y_test = engine.prepare("mlp", n_nodes, seed=SEED)
    start_state = copy.deepcopy(module.state_dict())

    class MLP(g.TorchModel):
        def __init__(self):
            super().__init__()
            self.net = copy.deepcopy(module)

        def init_weights(self):  # every node starts from dmlbook's initial model
            self.net.load_state_dict(start_state)

        def forward(self, x):
            return self.net(x)

    class TrainOnWakeNode(g.GossipNode):
        """dmlbook's protocol: SGD step on waking up, then push; merge on receive."""

        def init_model(self, *args, **kwargs):
            super().init_model(local_train=False)

        def send(self, t, peer, protocol):
            self.model_handler._update(self.data[0])  # one mini-batch step
            return super().send(t, peer, protocol)

        def receive(self, t, msg):
            self.model_handler._merge(g.CACHE.pop(msg.value[0]))  # (x + m) / 2
            return None

    class TestSet:  # what the simulator asks of a data dispatcher
        def has_test(self):
            return True

        def get_eval_set(self):
            return X_test, y_test

    class MedianAccuracy(g.SimulationEventReceiver):
        def __init__(self):
            self.median, self.wall = [], []

        def update_message(self, failed, msg=None): ...
        def update_timestep(self, t): ...
        def update_end(self): ...

        def update_evaluation(self, round, on_user, evaluation):
            if not on_user:
                self.median.append(float(np.median([e["accuracy"] for e in evaluation])))
                self.wall.append(time.perf_counter())

    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    R = cfg["steps_per_cycle"]
    net = g.StaticP2PNetwork(n_nodes, topology=None)
    nodes = {}
    for i in range(n_nodes):
        rows = slice(int(node_data.offsets[i]), int(node_data.offsets[i] + node_data.sizes[i]))
        handler = g.TorchModelHandler(
            net=MLP(), optimizer=torch.optim.SGD, optimizer_params={"lr": cfg["lr"]},
            criterion=torch.nn.functional.cross_entropy, local_epochs=0,
            batch_size=cfg["batch_size"], create_model_mode=g.CreateModelMode.MERGE_UPDATE)
        nodes[i] = TrainOnWakeNode(idx=i, data=((node_data.X[rows], node_data.y[rows]), None),
                                   round_len=R, model_handler=handler, p2p_net=net, sync=True)
    sim = g.GossipSimulator(nodes=nodes, data_dispatcher=TestSet(), delta=R,
                            protocol=g.AntiEntropyProtocol.PUSH,
                            delay=g.ConstantDelay(int(cfg["delay_fraction"] * R)))
    report, median = g.SimulationReport(), MedianAccuracy()
    sim.add_receiver(report)
    sim.add_receiver(median)
    start = time.perf_counter()
    sim.init_nodes(seed=SEED)
    sim.start(n_rounds=cycles)
    wall = time.perf_counter() - start
    return {"wall_s": wall, "messages": report._sent_messages, "median": median.median,
            "to_80_s": next((w - start for a, w in zip(median.median, median.wall)
                             if a >= 0.8), float("nan"))}


def dmlbook_gossip(n_nodes: int, until: float) -> tuple[float, object]:
    cfg = GOSSIP
    start = time.perf_counter()
    result = dml_gossip.gossip_learning(
        n_nodes=n_nodes, until=until, delta=1.0, jitter=0.0,
        delay=cfg["delay_fraction"], sampling="uniform", lr=cfg["lr"],
        batch_size=cfg["batch_size"], eval_every=1.0, seed=SEED, progress=False)
    return time.perf_counter() - start, result


def first_cycle_at(medians, level=0.8):
    return next((c for c, a in enumerate(medians, start=1) if a >= level), None)


def compare_gossip(n_nodes: int, g) -> float:
    cycles = GOSSIP["cycles"]
    ours_s, ours = dmlbook_gossip(n_nodes, until=float(cycles))
    # dmlbook evaluates at t = 0, 1, ..., 30; gossipy at the end of each cycle.
    ours_median = [float(np.median(a)) for a in ours.test_acc[1:]]
    peer = gossipy_run(n_nodes, g, cycles)
    extra = f"messages: ledger {ours.ledger.totals().sent:,}, gossipy report {peer['messages']:,}"
    return line("gossip learning", n_nodes, ours_s, "gossipy", peer["wall_s"],
                ours_median[-1], peer["median"][-1], extra)


def time_to_80(n_nodes: int, g) -> None:
    """Wall time until the median node reaches 80% test accuracy (not a speed-up line)."""
    _, ours = dmlbook_gossip(n_nodes, until=float(TO_80_CYCLES))
    reached = first_cycle_at([float(np.median(a)) for a in ours.test_acc[1:]])
    ours_s = dmlbook_gossip(n_nodes, until=reached + 1e-9)[0] if reached else float("nan")
    peer = gossipy_run(n_nodes, g, TO_80_CYCLES)
    peer_reached = first_cycle_at(peer["median"])
    print(f"# gossip learning, {n_nodes} nodes, time to 80% median accuracy (at most "
          f"{TO_80_CYCLES} cycles): dmlbook cycle {reached}, {ours_s:.2f} s; gossipy cycle "
          f"{peer_reached}, {peer['to_80_s']:.2f} s", flush=True)


# --------------------------------------------------------------------------- Flower

def flower_run(n_clients: int) -> dict:
    """FedAvg in Flower's simulation engine: ClientApp + ServerApp + run_simulation."""
    from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp
    from flwr.serverapp import Grid, ServerApp
    from flwr.serverapp.strategy import FedAvg
    from flwr.simulation import run_simulation

    logging.getLogger("flwr").setLevel(logging.WARNING)

    cfg = FEDAVG
    module, dataset, node_data, X_test, y_test = engine.prepare("mlp", n_clients, seed=SEED)
    client_app, server_app = ClientApp(), ServerApp()
    marks = {}

    @client_app.train()
    def train(msg: Message, context: Context):
        i = int(context.node_config["partition-id"])
        model = copy.deepcopy(module)
        model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
        opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"])
        gen = torch.Generator().manual_seed(SEED * 100_003 + i)
        for _ in range(cfg["local_steps"]):
            idx = node_data.node_batch_indices(i, gen, cfg["batch_size"])
            loss = torch.nn.functional.cross_entropy(model(node_data.X[idx]), node_data.y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        # dmlbook's server averages the clients with equal weights; so does this one.
        reply = RecordDict({"arrays": ArrayRecord(model.state_dict()),
                            "metrics": MetricRecord({"num-examples": 1})})
        return Message(content=reply, reply_to=msg)

    accuracy = []

    def evaluate(server_round: int, arrays: ArrayRecord):
        model = copy.deepcopy(module)
        model.load_state_dict(arrays.to_torch_state_dict())
        with torch.no_grad():
            acc = float((model(X_test).argmax(1) == y_test).float().mean())
        accuracy.append(acc)
        return MetricRecord({"accuracy": acc})

    @server_app.main()
    def main(grid: Grid, context: Context):
        marks["main_start"] = time.perf_counter()
        strategy = FedAvg(fraction_train=1.0, fraction_evaluate=0.0,
                          min_train_nodes=n_clients, min_available_nodes=n_clients)
        strategy.start(grid=grid, initial_arrays=ArrayRecord(module.state_dict()),
                       num_rounds=cfg["rounds"], evaluate_fn=evaluate)
        marks["main_end"] = time.perf_counter()

    start = time.perf_counter()
    run_simulation(server_app=server_app, client_app=client_app, num_supernodes=n_clients,
                   backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}})
    total = time.perf_counter() - start
    return {"total_s": total, "train_s": marks["main_end"] - marks["main_start"],
            "accuracy": accuracy[-1]}


def compare_fedavg(n_clients: int) -> float:
    cfg = FEDAVG
    start = time.perf_counter()
    ours = federated.run_fedavg(n_clients=n_clients, rounds=cfg["rounds"],
                                local_steps=cfg["local_steps"], lr=cfg["lr"],
                                batch_size=cfg["batch_size"], send="parameters", seed=SEED,
                                progress=False)
    ours_s = time.perf_counter() - start
    peer = flower_run(n_clients)
    extra = f"with Ray's start-up: Flower {peer['total_s']:.2f} s, " \
            f"ratio {peer['total_s'] / ours_s:.1f}×"
    return line("FedAvg", n_clients, ours_s, "Flower", peer["train_s"],
                ours.test_acc[-1], peer["accuracy"], extra)


# --------------------------------------------------------------------------- pfl

def machine() -> str:
    """The CPU, its cores, torch's version and threads, and the load: printed above a table."""
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                if ln.startswith("model name")), platform.processor() or platform.machine())
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} torch thread(s) per process, load average "
            + " ".join(f"{x:.1f}" for x in os.getloadavg()))


def with_pfl_methods(net: torch.nn.Module) -> torch.nn.Module:
    """``net`` with the ``loss`` and ``metrics`` methods that pfl's PyTorchModel calls
    (cross-entropy; the metric is the summed loss weighted by the examples)."""
    from pfl.metrics import Weighted

    loss_fn = torch.nn.functional.cross_entropy
    net.loss = types.MethodType(lambda self, x, y, eval=False: loss_fn(self(x), y), net)
    net.metrics = types.MethodType(torch.no_grad()(
        lambda self, x, y, eval=True: {"loss": Weighted(float(loss_fn(self(x), y, reduction="sum")),
                                                        len(y))}), net)
    return net


def pfl_run(n_clients: int) -> dict:
    """FedAvg in pfl: FederatedAveraging on a SimulatedBackend, the whole cohort each round."""
    from pfl.aggregate.simulate import SimulatedBackend
    from pfl.aggregate.weighting import WeightByUser
    from pfl.algorithm import FederatedAveraging, NNAlgorithmParams
    from pfl.data.dataset import Dataset
    from pfl.data.federated_dataset import FederatedDataset
    from pfl.data.sampling import get_user_sampler
    from pfl.hyperparam import NNEvalHyperParams, NNTrainHyperParams
    from pfl.model.pytorch import PyTorchModel

    logging.getLogger("pfl").setLevel(logging.WARNING)
    cfg = FEDAVG
    module, dataset, node_data, X_test, y_test = engine.prepare("mlp", n_clients, seed=SEED)
    net = with_pfl_methods(copy.deepcopy(module))
    users = {}
    for i in range(n_clients):
        rows = slice(int(node_data.offsets[i]), int(node_data.offsets[i] + node_data.sizes[i]))
        users[i] = [node_data.X[rows], node_data.y[rows]]
    federated = FederatedDataset(lambda u: Dataset(users[u], user_id=u),
                                 get_user_sampler("minimize_reuse", list(range(n_clients))))
    params = [p for p in net.parameters() if p.requires_grad]
    model = PyTorchModel(model=net, local_optimizer_create=torch.optim.SGD,
                         central_optimizer=torch.optim.SGD(params, 1.0))
    backend = SimulatedBackend(training_data=federated, val_data=None,
                               postprocessors=[WeightByUser()])
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # pfl prints every iteration's metrics
        _pfl_fedavg(FederatedAveraging, NNAlgorithmParams, NNTrainHyperParams,
                    NNEvalHyperParams, backend, model, n_clients, len(y_test))
    wall = time.perf_counter() - start
    with torch.no_grad():
        acc = float((net(X_test).argmax(1) == y_test).float().mean())
    return {"wall_s": wall, "accuracy": acc}


def _pfl_fedavg(FederatedAveraging, NNAlgorithmParams, NNTrainHyperParams, NNEvalHyperParams,
                backend, model, n_clients, n_test):
    cfg = FEDAVG
    FederatedAveraging().run(
        algorithm_params=NNAlgorithmParams(central_num_iterations=cfg["rounds"],
                                           evaluation_frequency=cfg["rounds"],
                                           train_cohort_size=n_clients, val_cohort_size=0),
        backend=backend, model=model,
        model_train_params=NNTrainHyperParams(local_num_epochs=None,
                                              local_learning_rate=cfg["lr"],
                                              local_batch_size=cfg["batch_size"],
                                              local_num_steps=cfg["local_steps"]),
        model_eval_params=NNEvalHyperParams(local_batch_size=n_test), callbacks=[])


def compare_pfl(n_clients: int) -> float:
    cfg = FEDAVG
    start = time.perf_counter()
    ours = federated.run_fedavg(n_clients=n_clients, rounds=cfg["rounds"],
                                local_steps=cfg["local_steps"], lr=cfg["lr"],
                                batch_size=cfg["batch_size"], seed=SEED, progress=False)
    ours_s = time.perf_counter() - start
    peer = pfl_run(n_clients)
    return line("pfl FedAvg", n_clients, ours_s, "pfl", peer["wall_s"], ours.test_acc[-1],
                peer["accuracy"])


# --------------------------------------------------------------------------- pfl, its own shape

# pfl-research's image-classification baseline (benchmarks/image_classification/configs/
# baseline.yaml: cifar10_iid, simple_cnn, fedavg): 50 points per user, cohort 50, one
# local epoch of batch 10 at lr 0.1, the server's SGD at lr 1 on the mean update
# (weight_by_samples false). The rounds and the target accuracy are this benchmark's.
# signal: the class patterns' amplitude against unit noise (0.12: about 60% after 75
# centralized SGD steps of batch 50; the quick run's 0.25 learns in a few rounds).
PFL_CIFAR = dict(users=1000, points=50, cohort=50, local_epochs=1, batch_size=10, lr=0.1,
                 rounds=30, n_test=1000, target=0.6, signal=0.12)
PFL_CIFAR_QUICK = dict(PFL_CIFAR, users=100, cohort=10, rounds=4, n_test=200, target=0.15,
                       signal=0.25)


def cifar_shaped(n_train: int, n_test: int, signal: float, seed: int = SEED):
    """CIFAR-10-shaped synthetic data: 3x32x32 images, 10 classes, nothing downloaded.

    Each class has a smooth pattern (8x8 Gaussian noise upsampled to 32x32);
    an image is ``signal`` times its class's pattern plus unit Gaussian
    noise per pixel.
    """
    from dmlbook.data import Dataset

    g = torch.Generator().manual_seed(seed)
    patterns = torch.nn.functional.interpolate(torch.randn(10, 3, 8, 8, generator=g),
                                               size=32, mode="bilinear", align_corners=False)

    def draw(n):
        y = torch.randint(0, 10, (n,), generator=g)
        return signal * patterns[y] + torch.randn(n, 3, 32, 32, generator=g), y

    (X_train, y_train), (X_test, y_test) = draw(n_train), draw(n_test)
    return Dataset(X_train, y_train, X_test, y_test, num_classes=10)


def simple_cnn(seed: int = SEED) -> torch.nn.Module:
    """pfl-research's ``simple_cnn`` for 32x32x3 inputs (benchmarks/model/pytorch/cnn.py):
    conv 3x3 to 32, conv 3x3 to 64, 2x2 max-pool, dense 128, dense 10; 1,626,442
    parameters, Glorot-uniform weights. Without its two dropout layers (and its
    NHWC-to-NCHW transpose: these images are NCHW already)."""
    nn = torch.nn
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Conv2d(3, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(),
                              nn.MaxPool2d(2), nn.Flatten(), nn.Linear(14 * 14 * 64, 128),
                              nn.ReLU(), nn.Linear(128, 10))
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
    return model


def cohorts(n_users: int, cohort: int, rounds: int) -> list[list[int]]:
    """The cohorts ``run_fedavg(cohort_size=cohort)`` samples, round by round (its stream)."""
    stream = federated.cohort_stream(SEED)
    return [federated.draw_cohort(stream, n_users, cohort).tolist() for _ in range(rounds)]


def dmlbook_cifar(cfg, dataset, rounds: int) -> tuple[float, object]:
    start = time.perf_counter()
    run = federated.run_fedavg(n_clients=cfg["users"], cohort_size=cfg["cohort"], rounds=rounds,
                               local_epochs=cfg["local_epochs"], batch_size=cfg["batch_size"],
                               lr=cfg["lr"], model=simple_cnn(), dataset=dataset, seed=SEED,
                               progress=False)
    return time.perf_counter() - start, run


def pfl_cifar_run(cfg, dataset) -> dict:
    """pfl's FedAvg on the same users, cohorts, initial model and test set."""
    from pfl.aggregate.simulate import SimulatedBackend
    from pfl.aggregate.weighting import WeightByUser
    from pfl.algorithm import FederatedAveraging, NNAlgorithmParams
    from pfl.callback.base import TrainingProcessCallback
    from pfl.data.dataset import Dataset
    from pfl.data.federated_dataset import FederatedDataset
    from pfl.hyperparam import NNEvalHyperParams, NNTrainHyperParams
    from pfl.metrics import Metrics
    from pfl.model.pytorch import PyTorchModel

    logging.getLogger("pfl").setLevel(logging.WARNING)
    setup = engine.prepare(simple_cnn(), cfg["users"], dataset=dataset, seed=SEED)
    nd, X_test, y_test = setup.node_data, setup.X_test, setup.y_test
    net = with_pfl_methods(simple_cnn())
    users = {i: [nd.X[int(nd.offsets[i]):int(nd.offsets[i] + nd.sizes[i])],
                 nd.y[int(nd.offsets[i]):int(nd.offsets[i] + nd.sizes[i])]]
             for i in range(cfg["users"])}
    order = iter([u for c in cohorts(cfg["users"], cfg["cohort"], cfg["rounds"]) for u in c])
    fed = FederatedDataset(lambda u: Dataset(users[u], user_id=u), lambda: next(order))
    model = PyTorchModel(model=net, local_optimizer_create=torch.optim.SGD,
                         central_optimizer=torch.optim.SGD(list(net.parameters()), 1.0))
    backend = SimulatedBackend(training_data=fed, val_data=None, postprocessors=[WeightByUser()])
    curve = []

    class Evaluate(TrainingProcessCallback):  # the server model on the test set, every round
        def after_central_iteration(self, aggregate_metrics, model, *, central_iteration):
            with torch.no_grad():
                acc = float((net(X_test).argmax(1) == y_test).float().mean())
            curve.append((time.perf_counter(), acc))
            return False, Metrics()

    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        FederatedAveraging().run(
            algorithm_params=NNAlgorithmParams(central_num_iterations=cfg["rounds"],
                                               evaluation_frequency=cfg["rounds"],
                                               train_cohort_size=cfg["cohort"],
                                               val_cohort_size=0),
            backend=backend, model=model,
            model_train_params=NNTrainHyperParams(local_num_epochs=cfg["local_epochs"],
                                                  local_learning_rate=cfg["lr"],
                                                  local_batch_size=cfg["batch_size"]),
            model_eval_params=NNEvalHyperParams(local_batch_size=len(y_test)),
            callbacks=[Evaluate()])
    wall = time.perf_counter() - start
    return {"wall_s": wall, "acc": [a for _, a in curve], "t": [t - start for t, _ in curve]}


def compare_pfl_cifar(cfg) -> float:
    """pfl on its own baseline's shape: same rounds, then the wall-clock to the target."""
    dataset = cifar_shaped(cfg["users"] * cfg["points"], cfg["n_test"], cfg["signal"])
    ours_s, ours = dmlbook_cifar(cfg, dataset, cfg["rounds"])
    peer = pfl_cifar_run(cfg, dataset)
    ours_acc = ours.test_acc[1:]
    reached = first_cycle_at(ours_acc, cfg["target"])
    peer_reached = first_cycle_at(peer["acc"], cfg["target"])
    ours_to = dmlbook_cifar(cfg, dataset, reached)[0] if reached else float("nan")
    peer_to = peer["t"][peer_reached - 1] if peer_reached else float("nan")
    to_ratio = peer_to / ours_to if reached and peer_reached else float("nan")
    print(f"# pfl's shape: {cfg['users']} users x {cfg['points']} points, cohort {cfg['cohort']}, "
          f"{cfg['local_epochs']} epoch of batch {cfg['batch_size']}, simple_cnn; to "
          f"{cfg['target']:.0%} test accuracy: dmlbook round {reached}, {ours_to:.2f} s; "
          f"pfl round {peer_reached}, {peer_to:.2f} s; ratio {to_ratio:.1f}×", flush=True)
    return line("pfl simple_cnn", f"{cfg['rounds']}r", ours_s, "pfl", peer["wall_s"],
                ours_acc[-1], peer["acc"][-1],
                f"{cfg['users']} users, cohort {cfg['cohort']}, {cfg['rounds']} rounds")


# --------------------------------------------------------------------------- gloo

def compare_dpsgd(n_nodes: int) -> float:
    from dmlbook import distributed

    cfg = DPSGD
    start = time.perf_counter()
    ours = dpsgd.run_dpsgd(n_nodes=n_nodes, topology=cfg["topology"], degree=cfg["degree"],
                           rounds=cfg["rounds"], lr=cfg["lr"], batch_size=cfg["batch_size"],
                           eval_every=cfg["rounds"], seed=SEED, progress=False)
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    peer = distributed.run_dpsgd_distributed(
        n_nodes, rounds=cfg["rounds"], topology=cfg["topology"], degree=cfg["degree"],
        lr=cfg["lr"], batch_size=cfg["batch_size"], seed=SEED)
    peer_s = time.perf_counter() - start
    module, dataset, _, X_test, y_test = engine.prepare("mlp", n_nodes, seed=SEED)
    nodes = engine.Nodes(module, n_nodes)
    _, acc_ours = nodes.evaluate(X_test, y_test, params=ours.nodes.params)
    _, acc_peer = nodes.evaluate(X_test, y_test, params=peer.params)
    gap = float((ours.nodes.params - peer.params).abs().max())
    return line("D-PSGD", n_nodes, ours_s, "gloo", peer_s, float(np.mean(acc_ours)),
                float(np.mean(acc_peer)), f"max parameter difference {gap:.1e}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="only the smallest size of each comparison")
    parser.add_argument("--only", choices=TASKS, action="append",
                        help="run only these comparisons (repeatable)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    args = parser.parse_args(argv)
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    tasks = args.only or list(TASKS)
    os.environ.setdefault("TQDM_DISABLE", "1")
    # One thread per process on both sides (Ray's workers read OMP_NUM_THREADS):
    # on a 2-core machine more threads only contend.
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    torch.set_num_threads(args.threads)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    print("# gossip: gossipy configured to dmlbook's protocol (step on wake-up, push to a "
          "uniform peer, average on receive)", flush=True)
    ratios = []
    if "gossip" in tasks:
        g = import_gossipy()
        ratios += [compare_gossip(n, g) for n in sizes["gossip"]]
        time_to_80(sizes["gossip"][0], g)
    if "fedavg" in tasks:
        ratios += [compare_fedavg(n) for n in sizes["fedavg"]]
    if "dpsgd" in tasks:
        ratios += [compare_dpsgd(n) for n in sizes["dpsgd"]]
    if "pfl" in tasks:
        ratios += [compare_pfl(n) for n in sizes["pfl"]]
    if "pfl-cifar" in tasks:
        ratios.append(compare_pfl_cifar(PFL_CIFAR_QUICK if args.quick else PFL_CIFAR))
    print(f"peers: min speed-up {min(ratios):.1f}× over {len(ratios)} comparisons")


if __name__ == "__main__":
    main()
