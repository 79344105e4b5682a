"""The models of the exercises, and the small models the scaled-down runs train.

* :class:`LeNet` — the CIFAR-10 LeNet of Hsieh et al. (ICML 2020), 85,098
  parameters, the size exercise 1 uses.
* :class:`WordLSTM` — the word-prediction LSTM of McMahan et al. (2017),
  4,950,544 parameters, the size exercise 2 uses.
* :func:`logistic_regression`, :func:`mlp`, :func:`small_cnn` — small models
  for 8x8 digits that many simulated nodes can train in seconds.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .units import (MACS_PER_NODE_EVAL, MACS_PER_NODE_STEP, MAX_MODEL_PARAMS, MAX_NODE_EVALS,
                    MAX_NODE_STEPS, MAX_VOCAB, MAX_WIDTH, check_int, check_product, check_seed)


def _width(name: str, value) -> int:
    return check_int(name, value, maximum=MAX_WIDTH)


def _classes(value) -> int:
    return check_int("num_classes", value, minimum=2, maximum=MAX_WIDTH)


def _check_size(n_params: int) -> None:
    """Reject a model of more than MAX_MODEL_PARAMS parameters before it is allocated."""
    if n_params > MAX_MODEL_PARAMS:
        raise ValueError(f"the model's widths must keep it at <= {MAX_MODEL_PARAMS:,} "
                         f"parameters (MAX_MODEL_PARAMS), got {n_params:,}")


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (scalars) of ``model``."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class LeNet(nn.Module):
    """LeNet for 3x32x32 images, 10 classes: 85,098 parameters.

    conv 5x5 3->32 (pad 2), max-pool 3/2, ReLU, LRN;
    conv 5x5 32->32 (pad 2), ReLU, avg-pool 3/2, LRN;
    conv 5x5 32->64 (pad 2), ReLU, avg-pool 3/2; linear 576->10.
    PyTorch pools round down (32 -> 15 -> 7 -> 3), so the linear layer sees
    64 * 3 * 3 = 576 features.
    """

    def __init__(self, num_classes: int = 10):
        super().__init__()
        num_classes = _classes(num_classes)
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 5, padding=2), nn.MaxPool2d(3, 2), nn.ReLU(),
            nn.LocalResponseNorm(3, alpha=5e-5, beta=0.75),
            nn.Conv2d(32, 32, 5, padding=2), nn.ReLU(), nn.AvgPool2d(3, 2),
            nn.LocalResponseNorm(3, alpha=5e-5, beta=0.75),
            nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.AvgPool2d(3, 2),
        )
        self.classifier = nn.Linear(64 * 3 * 3, num_classes)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(X).flatten(1))


class PeepholeLSTM(nn.Module):
    """One LSTM layer with peephole connections and a single bias vector.

    The cell of TensorFlow 1's ``LSTMCell(use_peepholes=True)``: input and
    forget gates look at the previous cell state, the output gate at the new
    one. Parameters: ``4H(I + H) + 4H + 3H``.
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        input_size = _width("input_size", input_size)
        H = hidden_size = _width("hidden_size", hidden_size)
        _check_size(4 * H * (input_size + H) + 7 * H)
        self.hidden_size = H
        self.input_weight = nn.Linear(input_size, 4 * H, bias=False)
        self.hidden_weight = nn.Linear(H, 4 * H, bias=False)
        self.bias = nn.Parameter(torch.zeros(4 * H))
        self.peephole_input = nn.Parameter(torch.zeros(H))
        self.peephole_forget = nn.Parameter(torch.zeros(H))
        self.peephole_output = nn.Parameter(torch.zeros(H))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """X: (batch, time, input_size) -> hidden states (batch, time, H)."""
        batch, steps, _ = X.shape
        h = X.new_zeros(batch, self.hidden_size)
        c = X.new_zeros(batch, self.hidden_size)
        gates_x = self.input_weight(X) + self.bias
        outputs = []
        for t in range(steps):
            i, f, g, o = (gates_x[:, t] + self.hidden_weight(h)).chunk(4, dim=1)
            i = torch.sigmoid(i + self.peephole_input * c)
            f = torch.sigmoid(f + self.peephole_forget * c)
            c = f * c + i * torch.tanh(g)
            o = torch.sigmoid(o + self.peephole_output * c)
            h = o * torch.tanh(c)
            outputs.append(h)
        return torch.stack(outputs, dim=1)


class WordLSTM(nn.Module):
    """Next-word model: embedding 10,000x192, peephole LSTM 256, softmax 10,000.

    1,920,000 + 460,544 + 2,570,000 = 4,950,544 parameters.
    """

    def __init__(self, vocab_size: int = 10_000, embed_dim: int = 192,
                 hidden_size: int = 256):
        super().__init__()
        vocab_size = check_int("vocab_size", vocab_size, minimum=2, maximum=MAX_VOCAB)
        embed_dim = _width("embed_dim", embed_dim)
        hidden_size = _width("hidden_size", hidden_size)
        V, E, H = vocab_size, embed_dim, hidden_size
        _check_size(V * E + 4 * H * (E + H) + 7 * H + H * V + V)
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.lstm = PeepholeLSTM(embed_dim, hidden_size)
        self.decoder = nn.Linear(hidden_size, vocab_size)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens: (batch, time) word ids -> logits (batch, time, vocab)."""
        return self.decoder(self.lstm(self.embedding(tokens)))


def parameter_breakdown(model: nn.Module) -> dict[str, int]:
    """Trainable parameters of each layer that has any, by name and type.

    For :class:`LeNet` that is its three convolutions and its linear layer;
    for :class:`WordLSTM`, its embedding, LSTM and decoder.
    """
    counts = {}
    for name, child in model.named_children():
        if isinstance(child, nn.Sequential):
            for sub_name, sub in child.named_children():
                if count_parameters(sub):
                    counts[f"{name}.{sub_name} ({type(sub).__name__})"] = count_parameters(sub)
        elif count_parameters(child):
            counts[name] = count_parameters(child)
    return counts


# --- small models for 8x8 digits -------------------------------------------

DIGITS_FEATURES = 64
DIGITS_CLASSES = 10


def logistic_regression(n_features: int = DIGITS_FEATURES,
                        num_classes: int = DIGITS_CLASSES) -> nn.Module:
    """Multinomial logistic regression: one linear layer (widths up to MAX_WIDTH)."""
    n_features = _width("n_features", n_features)
    num_classes = _classes(num_classes)
    _check_size((n_features + 1) * num_classes)
    return nn.Sequential(nn.Flatten(), nn.Linear(n_features, num_classes))


def mlp(n_features: int = DIGITS_FEATURES, hidden: int = 32,
        num_classes: int = DIGITS_CLASSES) -> nn.Module:
    """One hidden layer with ReLU (widths up to MAX_WIDTH)."""
    n_features = _width("n_features", n_features)
    hidden = _width("hidden", hidden)
    num_classes = _classes(num_classes)
    _check_size((n_features + 1) * hidden + (hidden + 1) * num_classes)
    return nn.Sequential(nn.Flatten(), nn.Linear(n_features, hidden), nn.ReLU(),
                         nn.Linear(hidden, num_classes))


def small_cnn(channels: int = 8, num_classes: int = DIGITS_CLASSES, *,
              n_features: int = DIGITS_FEATURES) -> nn.Module:
    """A small CNN for 1x8x8 digits: conv 3x3, ReLU, max-pool 2, linear (widths up to MAX_WIDTH)."""
    if isinstance(n_features, bool) or n_features != DIGITS_FEATURES:
        raise ValueError(f"n_features must be {DIGITS_FEATURES} (8x8 images) for the CNN, "
                         f"got {n_features!r}")
    channels = _width("channels", channels)
    num_classes = _classes(num_classes)
    _check_size(10 * channels + (16 * channels + 1) * num_classes)
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(channels * 16, num_classes),
    )


MODELS = {"logreg": logistic_regression, "mlp": mlp, "cnn": small_cnn}


def make_model(name: str, *, seed: int = 0, **kwargs) -> nn.Module:
    """Build one of :data:`MODELS` by name, initialised from ``seed``."""
    if not isinstance(name, str) or name not in MODELS:
        raise ValueError(f"model must be one of {', '.join(map(repr, MODELS))}, got {name!r}")
    seed = check_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MODELS[name](**kwargs)


def model_for(model, dataset, *, seed: int = 0) -> nn.Module:
    """``model`` itself if it is a module, else :func:`make_model` sized for ``dataset``.

    A module of the caller's is checked first (:func:`check_model`), so that a
    model the simulators cannot run is refused here, naming ``model`` or
    ``dataset``, and not deep inside ``vmap``.
    """
    if isinstance(model, nn.Module):
        return check_model(model, dataset)
    return make_model(model, seed=seed, n_features=dataset.n_features,
                      num_classes=dataset.num_classes)


def check_model(model: nn.Module, dataset) -> nn.Module:
    """``model`` if the simulators can run it on ``dataset``; else a ``ValueError``.

    The simulators hold every node's parameters as one float32 vector and run
    the model as a function of it, so ``model`` must: have at least one
    parameter, all float32 and on the CPU with real values (not on the meta
    device); keep no state outside its parameters (buffers, such as
    BatchNorm's running statistics, would be shared by all nodes); and map two
    of ``dataset``'s training examples to a float tensor of shape
    ``(2, dataset.num_classes)`` in one forward pass (run here, without
    gradients and without touching the caller's random state).
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    params = list(model.named_parameters())
    if not params:
        raise ValueError("model must have at least one parameter to train, got a module "
                         "without parameters")
    for name, p in params:
        if p.is_meta or p.device.type != "cpu":
            raise ValueError(f"model must hold its parameters on the CPU with real values, "
                             f"got {name!r} on the {p.device.type} device")
        if p.dtype != torch.float32:
            raise ValueError(f"model must have float32 parameters (call model.float()), "
                             f"got {name!r} of {p.dtype}")
    buffers = [name for name, _ in model.named_buffers()]
    if buffers:
        raise ValueError(f"model must keep all its state in parameters; it has buffers "
                         f"({', '.join(buffers[:3])}), e.g. BatchNorm's running statistics, "
                         "which the simulated nodes cannot each hold: use a model without "
                         "them (LayerNorm or GroupNorm instead of BatchNorm)")
    X = dataset.X_train[:2]
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            out = model(X)
    except Exception as error:  # the caller's module: any error it raises
        raise ValueError(f"model must accept dataset's examples (shape "
                         f"{tuple(X.shape[1:])} each): its forward pass on two of them "
                         f"raised {type(error).__name__}: {error}") from error
    expected = (len(X), dataset.num_classes)
    if (not isinstance(out, torch.Tensor) or not out.is_floating_point()
            or tuple(out.shape) != expected):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"model must output one score per class for each example "
                         f"(dataset.num_classes = {dataset.num_classes}): on two examples "
                         f"a float tensor of shape {expected}, got {got}")
    return model


# --- what a step costs ---------------------------------------------------------

def forward_macs(model: nn.Module, X: torch.Tensor) -> int:
    """Multiply-accumulates of ``model``'s forward pass per example, counted on ``X``.

    ``X`` is a few examples (two will do). Counted are the layers whose products
    make up the cost of the book's models: ``nn.Linear`` (outputs x inputs) and
    ``nn.Conv1d/2d/3d`` (outputs x input channels per group x kernel size). A
    product a module computes in its own ``forward`` counts nothing, so for
    such a module :func:`step_cost` is at least 1 but may be low.
    """
    total = 0

    def count(layer, inputs, out):
        nonlocal total
        if isinstance(layer, nn.Linear):
            total += out.numel() * layer.in_features
        else:  # a convolution: each output entry sums over its receptive field
            total += (out.numel() * (layer.in_channels // layer.groups)
                      * math.prod(layer.kernel_size))

    layers = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, layers)]
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            model(X)
    finally:
        for hook in hooks:
            hook.remove()
    return -(-total // len(X))


def step_cost(macs_per_example: int, batch_size: int) -> int:
    """Node-steps one step on ``batch_size`` examples counts as: one per started
    :data:`~dmlbook.units.MACS_PER_NODE_STEP` multiply-accumulates of its forward
    pass, at least one (the digits MLP on 32 examples: 1; the sheet's LeNet: 328)."""
    return _started_units(batch_size * macs_per_example, MACS_PER_NODE_STEP)


def _started_units(macs: int, unit: int) -> int:
    """How many ``unit``s of multiply-accumulates ``macs`` starts, at least one."""
    return max(1, -(-macs // unit))


def check_training_work(name: str, node_steps: int, model: nn.Module, X: torch.Tensor,
                        batch_size: int, what: str, maximum: int = MAX_NODE_STEPS,
                        bound: str = "MAX_NODE_STEPS") -> int:
    """Reject a run whose ``node_steps`` (``what`` says which product), each counted
    as :func:`step_cost` node-steps of ``model`` on ``batch_size`` examples (measured
    on the first two of the run's examples ``X``), pass ``maximum``; else return the
    cost of a step."""
    macs = forward_macs(model, X[:2])
    cost = step_cost(macs, batch_size)
    check_product(name, node_steps * cost, maximum,
                  f"{what} x {cost:,} ({bound}; a step of this model on {batch_size:,} "
                  f"examples is {batch_size * macs:,} multiply-accumulates and counts as "
                  f"{cost:,} node-steps, one per started {MACS_PER_NODE_STEP:,})")
    return cost


def evaluation_cost(macs_per_example: int, n_examples: int) -> int:
    """Evaluations one node's evaluation on ``n_examples`` test examples counts as:
    one per started :data:`~dmlbook.units.MACS_PER_NODE_EVAL` multiply-accumulates
    of its forward pass, at least one (the digits MLP on its 359 test images: 1;
    the sheet's LeNet on 200 images: 64)."""
    return _started_units(n_examples * macs_per_example, MACS_PER_NODE_EVAL)


def check_evaluation_work(name: str, evaluations: int, model: nn.Module, X_test: torch.Tensor,
                          what: str, maximum: int = MAX_NODE_EVALS,
                          bound: str = "MAX_NODE_EVALS") -> int:
    """Reject a run whose ``evaluations`` (``what`` says which product), each counted
    as :func:`evaluation_cost` evaluations of ``model`` on the test set ``X_test``,
    pass ``maximum``; else return the cost of one evaluation.

    An evaluation that counts as one is bounded by the caller's own count checks
    (each simulator bounds its evaluations, or its rounds, before it builds the
    model), so only a costlier one is checked here.
    """
    macs = forward_macs(model, X_test[:2])
    cost = evaluation_cost(macs, len(X_test))
    if cost > 1:
        check_product(name, evaluations * cost, maximum,
                      f"{what} x {cost:,} ({bound}; an evaluation of this model on the "
                      f"{len(X_test):,} test examples is {len(X_test) * macs:,} "
                      f"multiply-accumulates and counts as {cost:,} evaluations, one per "
                      f"started {MACS_PER_NODE_EVAL:,})")
    return cost
