"""Bayesian SegNet: the models' dropout, their gradients and PyTorch twin, Monte Carlo
inference, the commands' --samples and the experiment's statistics."""

import os

import numpy as np
import pytest

from tinysegnet import engine, evaluate, nn, predict, train
from tinysegnet import functional as F
from tinysegnet.experiments import bayesian
from tinysegnet.gradcheck import GradientCheckError, check_gradients
from tinysegnet.models import build, from_config


def _tiny(name="bayesian-segnet-basic", **options):
    options = options or (dict(base_width=2) if name.endswith("segnet") else dict(width=4, kernel=3))
    return build(name, **options)


def _x(n=2, h=12, w=18, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal((n, 3, h, w)).astype(dtype)


@pytest.mark.parametrize("name,where", [
    ("bayesian-segnet-basic", ["encoder.layers.12", "encoder.layers.17", "decoder.layers.3",
                               "decoder.layers.7"]),
    ("bayesian-segnet", ["encoder.layers.24", "encoder.layers.35", "encoder.layers.46",
                         "decoder.layers.10", "decoder.layers.21", "decoder.layers.32"]),
])
def test_dropout_sits_where_segnet_tutorial_puts_it(name, where):
    """After the deepest pools (pool3, pool4[, pool5]) and after the deepest decoders' last
    batch norm or ReLU; the weights are the plain model's."""
    model = build(name)
    found = [prefix for prefix, m in model.named_modules() if isinstance(m, nn.Dropout)]
    assert found == where
    layers = dict(model.named_modules())
    for prefix in found:
        block, index = prefix.rsplit(".", 1)
        before = layers[f"{block}.{int(index) - 1}"]
        assert isinstance(before, nn.MaxPool2x2 if block.startswith("encoder") else
                          (nn.BatchNorm2d if name == "bayesian-segnet-basic" else nn.ReLU))
        assert layers[prefix].p == 0.5
    assert model.num_parameters() == build(name.replace("bayesian-", "")).num_parameters()
    assert from_config(model.config).config == model.config


def test_dropout_needs_a_seed_to_train():
    with pytest.raises(RuntimeError, match="seed_dropout"):
        _tiny().train().forward(_x())


def test_whole_model_gradient_check_with_dropout_float64():
    """Training mode, the same masks in every evaluation (the generator reseeded)."""
    model = build("bayesian-segnet-basic", n_classes=3, width=3, kernel=3, seed=1).astype(np.float64)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 9, 10))
    labels = rng.integers(0, 3, (2, 9, 10))
    labels[0, 0, 0] = 7  # an ignored pixel
    weights = np.array([0.5, 1.0, 2.0])

    def loss(**_):
        nn.seed_dropout(model, 5)
        return F.softmax_cross_entropy(model.forward(x), labels, weights, 7)[0]

    nn.seed_dropout(model, 5)
    _, dlogits = F.softmax_cross_entropy(model.forward(x), labels, weights, 7)
    model.backward(dlogits)
    kept = [layer._cache.keep for layer in nn.dropout_layers(model)]
    assert all(0 < k.mean() < 1 for k in kept)  # something was dropped, something kept
    named = dict(model.named_parameters())
    errors = check_gradients(loss, {k: p.data for k, p in named.items()},
                             {k: p.grad for k, p in named.items()})
    assert len(errors) == 26 and max(errors.values()) < 1e-6


def test_a_backward_that_ignores_the_mask_is_caught(monkeypatch):
    """The model-level check is not blind to dropout: passing dout straight through fails it."""
    model = build("bayesian-segnet-basic", n_classes=3, width=3, kernel=3, seed=1).astype(np.float64)
    monkeypatch.setattr(nn.Dropout, "backward", lambda self, dout: dout)
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 10))
    labels = np.random.default_rng(1).integers(0, 3, (2, 9, 10))

    def loss(**_):
        nn.seed_dropout(model, 5)
        return F.softmax_cross_entropy(model.forward(x), labels)[0]

    nn.seed_dropout(model, 5)
    model.backward(F.softmax_cross_entropy(model.forward(x), labels)[1])
    named = dict(model.named_parameters())
    with pytest.raises(GradientCheckError):
        check_gradients(loss, {k: p.data for k, p in named.items()},
                        {k: p.grad for k, p in named.items()})


@pytest.mark.parametrize("name", ["bayesian-segnet-basic", "bayesian-segnet"])
@pytest.mark.parametrize("training", [True, False])
def test_pytorch_twin_with_the_same_masks(name, training):
    """float64, full width: logits and (training) every gradient against PyTorch, its
    dropout layers replaced by our masks; in eval mode the twin's dropout is off, as ours."""
    torch = pytest.importorskip("torch")
    from tinysegnet.interop import torch as bridge

    model = build(name).astype(np.float64).train(training)
    net = bridge.to_torch(model).double().train(training)
    x = _x(2, 32, 48, dtype=np.float64)
    labels = np.random.default_rng(1).integers(0, 12, (2, 32, 48)).astype(np.uint8)
    nn.seed_dropout(model, 3)
    logits = model.forward(x)
    loss, dlogits = F.softmax_cross_entropy(logits, labels, None, 11)
    if training:
        masks = [torch.from_numpy(layer._cache.keep * 2.0) for layer in nn.dropout_layers(model)]
        drops = [(lst, i) for lst in (net.enc_drop, net.dec_drop) for i, d in enumerate(lst)
                 if isinstance(d, torch.nn.Dropout)]
        assert len(drops) == len(masks)
        for (lst, i), mask in zip(drops, masks):
            lst[i] = _Times(mask)
    t_logits = net(torch.from_numpy(x))
    np.testing.assert_allclose(logits, t_logits.detach().numpy(), rtol=0, atol=1e-9 * np.abs(logits).max())
    if training:
        model.backward(dlogits)
        torch.nn.functional.cross_entropy(t_logits, torch.from_numpy(labels.astype(np.int64)),
                                          ignore_index=11).backward()
        scale = max(float(p.grad.abs().max()) for p in net.parameters())
        for ours, theirs in bridge._pairs(model, net):
            for mine, its in bridge._names(ours):
                value = getattr(ours, mine)
                if hasattr(value, "grad"):
                    expected = getattr(theirs, its).grad.numpy()
                    limit = 1e-9 * max(np.abs(expected).max(), 1e-3 * scale)
                    assert np.abs(value.grad - expected).max() <= limit


class _Times:
    """A PyTorch module multiplying by a fixed tensor (our mask, scaled)."""

    def __new__(cls, mask):
        import torch

        class Times(torch.nn.Module):
            def forward(self, x):
                return x * mask
        return Times()


def _sampled(model, x, n, seed):
    """The Monte Carlo estimate written out plainly: n passes, mean and class-averaged variance."""
    model.eval()
    nn.set_sampling(model, True)
    nn.seed_dropout(model, seed)
    probabilities = np.stack([F.softmax(model.forward(x)) for _ in range(n)])
    nn.set_sampling(model, False)
    return probabilities.mean(0), probabilities.var(0).mean(1)


def test_monte_carlo_is_the_mean_and_class_averaged_variance_of_the_samples():
    model, x = _tiny(), _x()
    model.train()
    nn.seed_dropout(model, 0)
    model.forward(x)  # moves the batch-norm statistics off their initial values
    mean, uncertainty = engine.monte_carlo(model, x, 7, seed=4)
    expected_mean, expected_uncertainty = _sampled(model, x, 7, 4)
    np.testing.assert_allclose(mean, expected_mean, atol=1e-6)
    np.testing.assert_allclose(uncertainty, expected_uncertainty, atol=1e-6)
    np.testing.assert_allclose(mean.sum(axis=1), 1, atol=1e-5)
    assert uncertainty.max() > 0


def test_monte_carlo_is_deterministic_for_a_seed_and_leaves_the_model_as_it_was():
    model, x = _tiny(), _x()
    running = {k: v.copy() for k, v in model.state_dict().items()}
    a, b, c = (engine.monte_carlo(model, x, 5, seed=s) for s in (1, 1, 2))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert np.abs(a[0] - c[0]).max() > 1e-3
    for key, value in model.state_dict().items():  # batch norm stayed in inference mode
        np.testing.assert_array_equal(value, running[key], err_msg=key)
    assert not any(layer.sampling for layer in nn.dropout_layers(model))
    # after sampling, an eval pass is weight averaging again: deterministic
    np.testing.assert_array_equal(model.eval().forward(x), model.eval().forward(x))


def test_estimates_for_several_counts_come_from_one_stream():
    model, x = _tiny(), _x()
    estimates = {n: (m, u) for n, m, u in engine.monte_carlo_estimates(model, x, [1, 3, 6], seed=2)}
    assert sorted(estimates) == [1, 3, 6]
    for n in (1, 3, 6):
        mean, uncertainty = engine.monte_carlo(model, x, n, seed=2)
        np.testing.assert_allclose(estimates[n][0], mean, atol=1e-7)
        np.testing.assert_allclose(estimates[n][1], uncertainty, atol=1e-7)
    assert estimates[1][1].max() == 0  # one sample has no variance


def test_without_dropout_monte_carlo_is_one_deterministic_pass():
    model, x = _tiny("segnet-basic"), _x()
    mean, uncertainty = engine.monte_carlo(model, x, 4)
    assert uncertainty.max() < 1e-12
    np.testing.assert_array_equal(mean.argmax(axis=1), model.eval().forward(x).argmax(axis=1))


def test_monte_carlo_refuses_a_count_below_one():
    with pytest.raises(ValueError, match="sample counts must be >= 1"):
        engine.monte_carlo(_tiny(), _x(), 0)


def _run(tiny_set, out, *extra):
    train.main(["--data-dir", tiny_set, "--size", "32", "48", "--batch-size", "3", "--quiet",
                "--device", "cpu", "--model", "bayesian-segnet-basic", "--out", str(out), *extra])


def test_training_with_dropout_resumes_bit_for_bit(tiny_set, tmp_path):
    """Each epoch's masks come from (seed, epoch): a resumed run draws the same ones."""
    _run(tiny_set, tmp_path / "straight", "--epochs", "2")
    _run(tiny_set, tmp_path / "stopped", "--epochs", "1")
    train.main(["--resume", str(tmp_path / "stopped" / "last.npz"), "--epochs", "2", "--quiet",
                "--device", "cpu"])  # another device draws other masks (and rounds otherwise)
    a, _, _ = _load(tmp_path / "straight")
    b, _, _ = _load(tmp_path / "stopped")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def _load(folder):
    from tinysegnet import checkpoint
    return checkpoint.load(str(folder / "last.npz"))


@pytest.fixture(scope="module")
def bayes_run(tiny_set, tmp_path_factory):
    out = tmp_path_factory.mktemp("bayes")
    _run(tiny_set, out, "--epochs", "1")
    return out


def test_evaluate_samples_is_reproducible(bayes_run, tiny_set, capsys):
    args = [str(bayes_run / "last.npz"), "--data-dir", tiny_set, "--samples", "3", "--device", "cpu"]
    evaluate.main(args)
    first = capsys.readouterr().out
    evaluate.main(args)
    assert capsys.readouterr().out == first
    assert "Monte Carlo dropout with 3 samples" in first


def test_predict_samples_writes_an_uncertainty_map(bayes_run, tiny_set, tmp_path):
    from PIL import Image
    predict.main([str(bayes_run / "last.npz"), os.path.join(tiny_set, "val"), "--out",
                  str(tmp_path / "p"), "--samples", "2", "--device", "cpu"])
    names = sorted(os.listdir(tmp_path / "p"))
    assert len(names) == 9 and sum(n.endswith("_uncertainty.png") for n in names) == 3
    with Image.open(tmp_path / "p" / names[-1]) as im:
        assert im.size[0] > 48  # the map and its colour bar


@pytest.mark.parametrize("command", [evaluate, predict])
def test_samples_on_a_model_without_dropout_is_one_line(command, tiny_set, tmp_path, capsys):
    train.main(["--data-dir", tiny_set, "--size", "32", "48", "--epochs", "1", "--quiet",
                "--device", "cpu", "--out", str(tmp_path / "plain")])
    args = [str(tmp_path / "plain" / "last.npz")]
    args += ["--data-dir", tiny_set] if command is evaluate else [tiny_set + "/val", "--out", str(tmp_path / "p")]
    with pytest.raises(SystemExit) as e:
        command.main(args + ["--samples", "2", "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and "--samples needs a model with dropout" in err and "\n" not in err


def test_rank_correlation_with_ties():
    assert bayesian.rank_correlation(np.arange(5.0), np.arange(5.0) ** 3) == pytest.approx(1)
    assert bayesian.rank_correlation(np.arange(5.0), -np.arange(5.0)) == pytest.approx(-1)
    # ranks of a: 1, 2.5, 2.5, 4; of b: 1.5, 1.5, 3.5, 3.5 -> Pearson's r of those ranks
    a, b = np.array([1.0, 2, 2, 3]), np.array([0.0, 0, 1, 1])
    ra, rb = np.array([1, 2.5, 2.5, 4]), np.array([1.5, 1.5, 3.5, 3.5])
    assert bayesian.rank_correlation(a, b) == pytest.approx(np.corrcoef(ra, rb)[0, 1])


def test_error_by_decile_sorts_by_uncertainty():
    uncertainty = np.linspace(1, 0, 100)  # the last pixels are the most certain
    error = (np.arange(100) < 30).astype(float)  # the 30 least certain are wrong
    rates, means = bayesian.error_by_decile(uncertainty, error)
    assert rates == [0.0] * 7 + [1.0] * 3 and means == sorted(means)


def test_class_edges_mark_both_sides_of_a_boundary():
    labels = np.zeros((1, 4, 5), np.uint8)
    labels[0, :, 3:] = 2
    edges = bayesian.class_edges(labels)[0]
    assert edges[:, 2].all() and edges[:, 3].all() and edges.sum() == 8


def test_experiment_writes_its_report(tiny_set, tmp_path, capsys):
    from tinysegnet import experiments
    experiments.main(["bayesian", "--data-dir", tiny_set, "--size", "32", "48", "--epochs", "1",
                      "--batch-size", "3", "--samples", "1", "3", "--device", "cpu",
                      "--runs", str(tmp_path / "runs"), "--report", str(tmp_path / "docs")])
    report = (tmp_path / "docs" / "bayesian.md").read_text()
    for row in ("| SegNet-Basic |", "| Bayesian SegNet-Basic, weight averaging |",
                "| Bayesian SegNet-Basic, Monte Carlo N = 1 |", "| Bayesian SegNet-Basic, Monte Carlo N = 3 |",
                "**Monte Carlo against weight averaging**", "rank correlation"):
        assert row in report
    # the protocol sentence is the runs' own: this data and batch, not the paper's
    assert f"CamVid from {tiny_set}, train split at 32x48, batch 3, SGD lr 0.1" in report
    assert "batch 12" not in report
    for picture in ("bayesian_samples.png", "bayesian_calibration.png", "bayesian_examples.png"):
        assert os.path.getsize(tmp_path / "docs" / picture) > 1000
    # a second call reuses both runs; another protocol in the same folder is refused
    experiments.main(["bayesian", "--data-dir", tiny_set, "--size", "32", "48", "--epochs", "1",
                      "--batch-size", "3", "--samples", "2", "--device", "cpu",
                      "--runs", str(tmp_path / "runs"), "--report", str(tmp_path / "docs")])
    assert capsys.readouterr().out.count("already trained") == 2
    with pytest.raises(SystemExit) as e:
        experiments.main(["bayesian", "--data-dir", tiny_set, "--size", "32", "64", "--epochs", "1",
                          "--batch-size", "3", "--runs", str(tmp_path / "runs"),
                          "--report", str(tmp_path / "docs")])
    assert e.value.code == 2 and "holds a run with size (32, 48)" in capsys.readouterr().err
