"""The GPU code path: every model, the commands and the launch budget.

Each test runs on a device module: the strict CuPy stand-in everywhere (CI has no GPU), and
real CuPy behind the ``gpu`` marker where a GPU is usable. The stand-in computes with NumPy,
so there these tests prove the code path (CuPy's names only, no host arrays, no implicit
conversions) and count launches; on a GPU they also prove the numbers.
"""

import os

import numpy as np
import pytest

from tinysegnet import backend, checkpoint, engine, evaluate, nn, predict, train
from tinysegnet.models import MODELS, build
from tinysegnet.optim import SGD
from tinysegnet.testing import strict_cupy

from conftest import rel_close


class _HostDraws:
    """A generator that draws on the host with NumPy and hands the draws to ``device``: the
    same dropout masks on both sides (CuPy's generator draws a different stream from NumPy's)."""

    def __init__(self, seed, device):
        self.rng, self.device = np.random.default_rng(seed), device

    def random(self, shape, dtype):
        return backend.to_device(self.rng.random(shape, dtype=dtype), self.device)


def _step(model, x, y, weights, device, steps=2):
    """Training steps (forward, loss, backward, SGD) on ``device``; returns the last loss, the
    gradients it left and the parameters after the update, as NumPy arrays."""
    model = model.to(device).train()
    draws = _HostDraws(0, device)
    for layer in nn.dropout_layers(model):
        layer.rng = draws
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x, y, w = (backend.to_device(a, device) for a in (x, y, weights))
    for _ in range(steps):  # a second step uses the momentum the first one left
        loss = engine.train_step(model, opt, x, y, w)
    grads = {k: backend.to_numpy(p.grad) for k, p in model.named_parameters()}
    return loss, grads, {k: backend.to_numpy(v) for k, v in model.state_dict().items()}


def _batch(rng, n, h, w, dtype):
    x = rng.standard_normal((n, 3, h, w)).astype(dtype)
    y = rng.integers(0, 12, (n, h, w)).astype(np.uint8)  # 11 is void
    return x, y, (rng.random(11) + 0.5).astype(dtype)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_steps_alike_on_the_host_and_the_device(device_xp, name):
    """float64: the device's convolution method differs from the CPU's, nothing else may."""
    size = (32, 32) if name.endswith("segnet") else (12, 18)
    options = dict(base_width=2) if name.endswith("segnet") else (dict(hidden=5) if name == "pixel" else
                                                           dict(width=4, kernel=3))
    x, y, w = _batch(np.random.default_rng(0), 2, *size, np.float64)
    on_cpu = _step(build(name, **options).astype(np.float64), x, y, w, "cpu")
    on_device = _step(build(name, **options).astype(np.float64), x, y, w, "gpu")
    assert on_device[0] == pytest.approx(on_cpu[0], rel=1e-10)
    for ours, theirs in zip(on_device[1:], on_cpu[1:]):
        # Gradients that are zero in exact arithmetic (a bias before batch norm) come out as
        # rounding noise (1e-18 to 1e-16, measured on an H100) on either side: those are
        # compared at a thousandth of the largest gradient's scale instead of their own.
        scale = max(float(np.abs(v).max()) for v in theirs.values())
        for key, value in theirs.items():
            limit = 1e-10 * max(float(np.abs(value).max()), 1e-3 * scale)
            assert float(np.abs(ours[key] - value).max()) <= limit, key


def test_segnet_basic_float32_step_agrees(device_xp):
    """One float32 step at full width: loss, every gradient and every updated parameter."""
    x, y, w = _batch(np.random.default_rng(1), 2, 45, 60, np.float32)
    on_cpu = _step(build("segnet-basic"), x, y, w, "cpu", steps=1)
    on_device = _step(build("segnet-basic"), x, y, w, "gpu", steps=1)
    assert on_device[0] == pytest.approx(on_cpu[0], rel=1e-4)
    for ours, theirs in zip(on_device[1:], on_cpu[1:]):
        for key, value in theirs.items():
            rel_close(ours[key], value, 1e-4)


@pytest.mark.slow
def test_launch_budget_of_segnet_basic(stand_in):
    """A training step at batch 12, 90x120 (the CamVid protocol): at most 500 array
    operations (each a kernel launch or more on a GPU; 486 with the fused kernels, 933
    without) and one host sync, the loss read once; an inference forward at most 180 (177)."""
    model = build("segnet-basic").to("gpu")
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x, y, w = (backend.to_device(a, "gpu") for a in _batch(np.random.default_rng(0), 12, 90, 120, np.float32))
    for _ in range(2):  # the first step creates the momentum buffers
        with strict_cupy.counting() as step:
            engine.train_step(model.train(), opt, x, y, w)
    with strict_cupy.counting() as inference:
        model.eval().forward(x)
    assert step.ops <= 500 and step.syncs == 1, (step.ops, step.syncs)
    assert inference.ops <= 180 and inference.syncs == 0, (inference.ops, inference.syncs)


def _train(tiny_set, out, *extra):
    train.main(["--data-dir", tiny_set, "--size", "32", "48", "--batch-size", "3", "--quiet",
                "--device", "gpu", "--out", str(out), *extra])


@pytest.mark.parametrize("model", ["segnet-basic", "bayesian-segnet-basic"])
def test_train_resume_evaluate_predict_on_the_device(device_xp, tiny_set, tmp_path, capsys, model):
    """Resumed on the device bit for bit, dropout's masks (drawn by CuPy there) included."""
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    _train(tiny_set, straight, "--epochs", "2", "--model", model)
    _train(tiny_set, stopped, "--epochs", "1", "--model", model)
    train.main(["--resume", str(stopped / "last.npz"), "--epochs", "2", "--quiet", "--device", "gpu"])
    a, _, _ = checkpoint.load(str(straight / "last.npz"))
    b, _, meta = checkpoint.load(str(stopped / "last.npz"))
    assert meta["progress"]["epoch"] == 2
    for key in a:  # resumed on the device, bit for bit
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)

    samples = ["--samples", "3"] if model.startswith("bayesian") else []
    evaluate.main([str(straight / "best.npz"), "--data-dir", tiny_set, "--device", "gpu",
                   "--full-res", "--recompute-bn", *samples])
    assert "mIoU" in capsys.readouterr().out
    predict.main([str(straight / "best.npz"), os.path.join(tiny_set, "val"), "--out",
                  str(tmp_path / "pred"), "--device", "gpu", *samples])
    assert len(os.listdir(tmp_path / "pred")) == (9 if samples else 6)


def test_train_with_cuda_graphs_is_train_without(device_xp, tiny_set, tmp_path):
    """Three epochs of 6 images in batches of 4 and 2 (per shape an eager step, a recording,
    a replay): the same checkpoint as eager steps, bit for bit through the stand-in."""
    _train(tiny_set, tmp_path / "eager", "--epochs", "3", "--batch-size", "4")
    _train(tiny_set, tmp_path / "graphed", "--epochs", "3", "--batch-size", "4", "--cuda-graph")
    a, _, _ = checkpoint.load(str(tmp_path / "eager" / "last.npz"))
    b, optimizer, _ = checkpoint.load(str(tmp_path / "graphed" / "last.npz"))
    assert optimizer  # the velocities were saved, from the arrays the graphs update
    for key in a:
        if device_xp is strict_cupy:
            np.testing.assert_array_equal(b[key], a[key], err_msg=key)
        else:
            np.testing.assert_allclose(b[key], a[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_the_precision_reaches_cupy_before_its_first_product(device_xp, tiny_set, tmp_path, monkeypatch):
    """--precision sets CuPy's own switch (read at its first float32 product) at the start of
    a command; without the flag the environment's choice stands."""
    monkeypatch.setenv(backend.TF32_ENV, "0")  # a number, as CuPy parses it; restored after the test
    _train(tiny_set, tmp_path / "run", "--epochs", "1")
    assert os.environ[backend.TF32_ENV] == "0"
    _train(tiny_set, tmp_path / "tf32", "--epochs", "1", "--precision", "tf32")
    assert os.environ[backend.TF32_ENV] == "1"
    evaluate.main([str(tmp_path / "tf32" / "best.npz"), "--device", "gpu", "--precision", "fp32"])
    assert os.environ[backend.TF32_ENV] == "0"
    with pytest.raises(ValueError, match="tf32"):
        backend.set_gpu_precision("bf16")


def test_a_gpu_run_defaults_to_tf32_as_pytorch_does_and_says_so(device_xp, tiny_set, tmp_path, monkeypatch,
                                                                 capsys):
    monkeypatch.delenv(backend.TF32_ENV)  # neither flag nor environment: the default; restored after
    _train(tiny_set, tmp_path / "run", "--epochs", "1")
    assert os.environ[backend.TF32_ENV] == "1"
    assert "device gpu (tf32 products)" in capsys.readouterr().out
    monkeypatch.delenv(backend.TF32_ENV)
    evaluate.main([str(tmp_path / "run" / "best.npz"), "--device", "gpu"])
    assert "on the gpu (tf32 products)" in capsys.readouterr().out


def test_a_cpu_run_leaves_the_precision_unset(tiny_set, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(backend.TF32_ENV)
    train.main(["--data-dir", tiny_set, "--size", "32", "48", "--batch-size", "3", "--quiet", "--epochs", "1",
                "--device", "cpu", "--out", str(tmp_path / "run")])
    assert backend.TF32_ENV not in os.environ  # nothing for a subprocess to inherit
    assert "device cpu;" in capsys.readouterr().out


def test_inference_runs_where_the_model_is(device_xp):
    """No device argument: every inference function sends its inputs to the model's device,
    and agrees with the host (float64, so the convolution methods differ only by rounding)."""
    from tinysegnet.data import load_synthetic_split
    train_split, val = load_synthetic_split("train", (24, 32)), load_synthetic_split("val", (24, 32))
    mean, std = [100.0, 110.0, 120.0], [50.0, 55.0, 60.0]
    results = {}
    for device in ("cpu", "gpu"):
        model = build("segnet-basic", width=4, kernel=3, seed=0).astype(np.float64).to(device)
        assert model.device == device
        engine.recompute_bn_statistics(model, train_split, mean, std, batch_size=5)
        scores, ids = engine.evaluate_split(model, val, mean, std, batch_size=4)
        one = engine.predict(model, val.images[0], mean, std, (24, 32))
        stats = {k: backend.to_numpy(v) for k, v in model.state_dict().items() if "running" in k}
        results[device] = scores, ids, one, stats
    (cpu_scores, cpu_ids, cpu_one, cpu_stats), (scores, ids, one, stats) = results["cpu"], results["gpu"]
    assert scores["mIoU"] == pytest.approx(cpu_scores["mIoU"], rel=1e-12)
    np.testing.assert_array_equal(ids, cpu_ids)
    np.testing.assert_array_equal(one, cpu_one)
    for key, value in cpu_stats.items():
        np.testing.assert_allclose(stats[key], value, rtol=1e-10, err_msg=key)

    # Monte Carlo dropout draws its masks with the device's generator: the same seed, the same
    # estimate, on the device.
    bayes = build("bayesian-segnet-basic", width=4, kernel=3, seed=0).to("gpu")
    first, again = (engine.monte_carlo_split(bayes, val, mean, std, [1, 3], batch_size=4, seed=0)
                    for _ in range(2))
    for n in (1, 3):
        assert first[n][0].shape == (len(val), 24, 32) and first[n][1].dtype == np.float32
        np.testing.assert_array_equal(first[n][0], again[n][0])
        np.testing.assert_array_equal(first[n][1], again[n][1])
