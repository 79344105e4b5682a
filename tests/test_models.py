import pytest
import torch

from dmlbook import models


def test_lenet_has_the_sheets_parameter_count():
    model = models.LeNet()
    assert models.count_parameters(model) == 85_098
    convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
    assert [models.count_parameters(c) for c in convs] == [2_432, 25_632, 51_264]
    assert models.count_parameters(model.classifier) == 5_770
    assert list(models.parameter_breakdown(model).values()) == [2_432, 25_632, 51_264, 5_770]
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_word_lstm_has_the_sheets_parameter_count():
    model = models.WordLSTM()
    assert models.count_parameters(model) == 4_950_544
    assert models.parameter_breakdown(model) == {
        "embedding": 1_920_000, "lstm": 460_544, "decoder": 2_570_000}
    # A stock PyTorch LSTM would give 256 more: two biases, no peepholes.
    assert models.count_parameters(torch.nn.LSTM(192, 256)) == 460_544 + 1_024 - 768


def test_peephole_lstm_runs_and_uses_its_peepholes():
    torch.manual_seed(0)
    cell = models.PeepholeLSTM(4, 3)
    X = torch.randn(2, 5, 4)
    before = cell(X)
    assert before.shape == (2, 5, 3)
    with torch.no_grad():
        cell.peephole_forget.fill_(5.0)
    assert not torch.allclose(before, cell(X))
    small = models.WordLSTM(vocab_size=50, embed_dim=8, hidden_size=6)
    assert small(torch.randint(0, 50, (3, 4))).shape == (3, 4, 50)


@pytest.mark.parametrize("name, n_params", [("logreg", 650), ("mlp", 64 * 32 + 32 + 330),
                                            ("cnn", 80 + 1290)])
def test_small_models(name, n_params):
    model = models.make_model(name, seed=0)
    assert models.count_parameters(model) == n_params
    assert model(torch.zeros(5, 64)).shape == (5, 10)


def test_make_model_is_seeded():
    a = torch.nn.utils.parameters_to_vector(models.make_model("mlp", seed=3).parameters())
    b = torch.nn.utils.parameters_to_vector(models.make_model("mlp", seed=3).parameters())
    c = torch.nn.utils.parameters_to_vector(models.make_model("mlp", seed=4).parameters())
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("call, param", [
    (lambda: models.make_model("resnet"), "model"),
    (lambda: models.make_model("mlp", seed=-1), "seed"),
    (lambda: models.LeNet(num_classes=1), "num_classes"),
    (lambda: models.WordLSTM(vocab_size=0), "vocab_size"),
    (lambda: models.mlp(hidden=0), "hidden"),
    (lambda: models.small_cnn(channels=2.5), "channels"),
    (lambda: models.logistic_regression(n_features=True), "n_features"),
])
def test_models_reject_bad_input(call, param):
    with pytest.raises(ValueError, match=param):
        call()
