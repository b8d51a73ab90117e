"""The PyTorch twin: whole-model parity with the same weights, and weights carried both ways."""

import numpy as np
import pytest

from tinysegnet import functional as F
from tinysegnet import nn
from tinysegnet.interop import torch as bridge
from tinysegnet.models import build

torch = pytest.importorskip("torch")

# Full-size networks (SegNet-Basic's 1.4M and SegNet's 29M parameters) on small inputs.
CASES = [("segnet-basic", (2, 45, 60)), ("segnet", (2, 32, 48))]


def _np(a):
    return a.detach().numpy() if hasattr(a, "detach") else np.asarray(a)


def _rel(ours, theirs, floor=1e-12):
    """max |ours - theirs| / max |theirs|, the denominator at least ``floor``."""
    ours, theirs = _np(ours), _np(theirs)
    return float(np.abs(ours - theirs).max() / max(np.abs(theirs).max(), floor))


def parity(name, shape, training, dtype=np.float32):
    """Worst relative disagreement, per quantity, between our model and its PyTorch twin with
    the same weights: logits, loss, and (training) every parameter gradient and running
    statistic."""
    model = build(name).astype(dtype)
    net = bridge.to_torch(model).to(torch.float64 if dtype == np.float64 else torch.float32)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((shape[0], 3) + shape[1:]).astype(dtype)
    labels = rng.integers(0, 12, (shape[0],) + shape[1:]).astype(np.uint8)  # 11 is void
    model.train(training)
    net.train(training)
    logits = model.forward(x)
    loss, dlogits = F.softmax_cross_entropy(logits, labels, None, 11)
    t_logits = net(torch.from_numpy(x))
    t_loss = torch.nn.functional.cross_entropy(t_logits, torch.from_numpy(labels.astype(np.int64)),
                                               ignore_index=11)
    errors = {"logits": _rel(logits, t_logits), "loss": _rel(float(loss), t_loss.item())}
    if training:  # our layers keep no cache in inference mode, so gradients are a training affair
        model.backward(dlogits)
        t_loss.backward()
        # A convolution's bias before batch norm has a gradient of exactly 0 in exact
        # arithmetic; both sides return rounding noise. Those are measured at a thousandth of
        # the largest gradient rather than at their own (zero) scale.
        scale = max(float(np.abs(_np(p.grad)).max()) for p in net.parameters())
        for i, (ours, theirs) in enumerate(bridge._pairs(model, net)):
            for mine, its in bridge._names(ours):
                value = getattr(ours, mine)
                if hasattr(value, "grad"):
                    errors[f"{i}.{mine}.grad"] = _rel(value.grad, getattr(theirs, its).grad, 1e-3 * scale)
                else:
                    errors[f"{i}.{mine}"] = _rel(value, getattr(theirs, its))
    return errors


def _assert_worst(errors, tol):
    worst = max(errors, key=errors.get)
    assert errors[worst] <= tol, (worst, errors[worst])


@pytest.mark.slow
@pytest.mark.parametrize("name,shape", CASES)
@pytest.mark.parametrize("training", [True, False])
def test_whole_model_parity_float64(name, shape, training):
    """Every quantity, both models, both modes: the same maths to rounding."""
    errors = parity(name, shape, training, np.float64)
    assert len(errors) > 2 or not training
    _assert_worst(errors, 1e-10)


@pytest.mark.slow
@pytest.mark.parametrize("name,shape", CASES)
@pytest.mark.parametrize("training", [True, False])
def test_whole_model_parity_float32(name, shape, training):
    """float32: logits and loss of both models, every gradient and statistic of SegNet-Basic,
    SegNet's statistics. SegNet's float32 gradients at random initialisation cannot be
    compared element by element: a few ReLU and max-pool decisions on values within rounding
    of a tie go either way (2 of 196,608 at its last ReLU here), each moving a weight gradient
    by ~2%, and PyTorch's own float32 differs from its float64 by up to 24% on other seeds.
    The float64 test holds those gradients to 1e-10."""
    errors = parity(name, shape, training)
    if name == "segnet":
        errors = {k: v for k, v in errors.items() if not k.endswith(".grad")}
    _assert_worst(errors, 1e-4)


@pytest.mark.parametrize("name", bridge.TWINS)
def test_twin_has_our_parameter_count_and_shapes(name):
    theirs = bridge.torch_model(name)
    assert sum(p.numel() for p in theirs.parameters()) == build(name).num_parameters()
    out = theirs.eval()(torch.zeros(1, 3, 45, 60))
    assert tuple(out.shape) == (1, 11, 45, 60)  # ceil-mode pooling and sized unpooling, like ours


@pytest.mark.parametrize("name,options", [("segnet-basic", dict(width=6, kernel=3, n_classes=5)),
                                          ("segnet", dict(base_width=4))])
def test_round_trip_ours_torch_ours_keeps_logits(name, options):
    model = build(name, seed=3, **options)
    model.forward(np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32))  # moves BN statistics
    back = bridge.from_torch(bridge.torch_state_dict(model), model.config)
    x = np.random.default_rng(2).standard_normal((1, 3, 32, 40)).astype(np.float32)
    np.testing.assert_array_equal(model.eval().forward(x), back.eval().forward(x))


def test_models_without_a_twin_are_refused():
    with pytest.raises(ValueError, match="no PyTorch twin for model 'fcn-basic'"):
        bridge.torch_model("fcn-basic")


def test_export_command_round_trip(tmp_path, capsys):
    """A checkpoint -> OUT.pt (+ OUT.json) -> the twin loads it -> back into ours: same logits."""
    import json

    from tinysegnet import checkpoint, engine, export
    model = build("segnet-basic", width=6, kernel=3)
    model.forward(np.random.default_rng(1).standard_normal((2, 3, 16, 16)).astype(np.float32))
    ckpt = tmp_path / "best.npz"
    config = engine.RunConfig(mean=[0.0, 0.0, 0.0], std=[1.0, 1.0, 1.0])
    progress = dict(epoch=3, best_miou=0.5, best_epoch=3, history=[], rng={})
    checkpoint.save(str(ckpt), model.state_dict(), engine.config.checkpoint_meta(config, model.config, progress))
    export.main([str(ckpt), str(tmp_path / "run.pt")])
    info = json.loads((tmp_path / "run.json").read_text())
    net = bridge.torch_model(info["model"])
    net.load_state_dict(torch.load(tmp_path / "run.pt"))
    back = bridge.from_torch(net, info["model"])
    x = np.random.default_rng(2).standard_normal((1, 3, 20, 24)).astype(np.float32)
    ours = model.eval().forward(x)
    np.testing.assert_array_equal(back.eval().forward(x), ours)
    np.testing.assert_allclose(net.eval()(torch.from_numpy(x)).detach().numpy(), ours, rtol=1e-4, atol=1e-5)
    with pytest.raises(SystemExit) as e:  # never overwrites without being asked
        export.main([str(ckpt), str(tmp_path / "run.pt")])
    assert e.value.code == 2 and "already exist" in capsys.readouterr().err


def test_an_exported_run_continues_in_pytorch_with_its_momentum(tiny_set, tmp_path):
    """export's OUT.pt, OUT.momentum.pt and OUT.json: one PyTorch SGD step from them, with the
    loss normalised as ours, gives the parameters our own next step gives (float32)."""
    import json

    from tinysegnet import engine, export, train
    run_dir = tmp_path / "run"
    train.main(["--data-dir", tiny_set, "--size", "32", "48", "--epochs", "1", "--batch-size", "3", "--quiet",
                "--device", "cpu", "--out", str(run_dir)])
    export.main([str(run_dir / "last.npz"), str(tmp_path / "run.pt")])
    info = json.loads((tmp_path / "run.json").read_text())
    cfg = info["run"]
    net = bridge.torch_model(info["model"])
    net.load_state_dict(torch.load(tmp_path / "run.pt"))
    buffers = torch.load(tmp_path / "run.momentum.pt")
    assert set(buffers) == {name for name, _ in net.named_parameters()}
    opt = torch.optim.SGD(net.parameters(), lr=cfg["lr"], momentum=cfg["momentum"], weight_decay=cfg["weight_decay"])
    for name, p in net.named_parameters():
        opt.state[p]["momentum_buffer"] = buffers[name].clone()

    run = engine.restore(str(run_dir / "last.npz"))
    images, labels = run.train_split.images[:3], run.train_split.labels[:3]
    x = engine.standardize(images, info["mean"], info["std"])
    engine.train_step(run.model.train(), run.optimizer, x, labels, run.class_weights, info["ignore_index"])

    net.train()
    y = torch.from_numpy(labels.astype(np.int64))
    logits = net(torch.from_numpy(x))
    loss = torch.nn.functional.cross_entropy(logits, y, weight=torch.tensor(cfg["class_weights"]),
                                             ignore_index=info["ignore_index"], reduction="sum")
    (loss / (y != info["ignore_index"]).sum()).backward()
    opt.step()
    ours = bridge.torch_state_dict(run.model)
    for name, value in net.state_dict().items():
        if value.dtype.is_floating_point:
            rel = float((value - ours[name]).abs().max() / max(float(ours[name].abs().max()), 1e-12))
            assert rel < 1e-4, name


@pytest.mark.slow
@pytest.mark.parametrize("name", ["segnet-basic", "bayesian-segnet-basic", "segnet", "bayesian-segnet"])
def test_onnx_export_agrees_with_our_logits(tmp_path, name):
    ort = pytest.importorskip("onnxruntime")
    from tinysegnet import checkpoint, engine, export
    options = dict(base_width=8) if name.endswith("segnet") else dict(width=16, kernel=7)
    model = build(name, **options)
    nn.seed_dropout(model, 0)
    model.forward(np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32))  # BN statistics
    ckpt = tmp_path / "best.npz"
    config = engine.RunConfig(model=name, mean=[0.0, 0.0, 0.0], std=[1.0, 1.0, 1.0])
    progress = dict(epoch=1, best_miou=0.5, best_epoch=1, history=[], rng={})
    checkpoint.save(str(ckpt), model.state_dict(), engine.config.checkpoint_meta(config, model.config, progress))
    export.main([str(ckpt), str(tmp_path / "model.onnx")])
    session = ort.InferenceSession(str(tmp_path / "model.onnx"))
    for shape in [(1, 3, 45, 60), (3, 3, 64, 80), (2, 3, 37, 51)]:  # dynamic batch and size, odd sizes too
        x = np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)
        theirs = session.run(None, {"x": x})[0]
        ours = model.eval().forward(x)
        assert float(np.abs(theirs - ours).max()) <= 1e-4 * max(float(np.abs(ours).max()), 1.0), shape
