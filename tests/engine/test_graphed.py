"""GraphedStep: the training step replayed from CUDA graphs computes what eager steps compute.

Through the strict stand-in a graph replays the very operations it recorded on the memory it
recorded them with, and nothing else, so a state the replay would not carry from step to step
(an input not copied in, a parameter rebound, a buffer from the default pool) shows here.
"""

import numpy as np
import pytest

from tinysegnet import backend, engine
from tinysegnet.models import build
from tinysegnet.optim import SGD
from tinysegnet.testing import strict_cupy


def _model_and_optimizer(name="segnet-basic", dtype=np.float64, **options):
    options = options or dict(width=4, kernel=3)
    model = build(name, **options).astype(dtype).to("gpu").train()
    return model, SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)


def _batches(sizes, dtype=np.float64, h=12, w=18):
    rng = np.random.default_rng(0)
    for n in sizes:
        x = rng.standard_normal((n, 3, h, w)).astype(dtype)
        y = rng.integers(0, 12, (n, h, w)).astype(np.uint8)  # 11 is void
        yield backend.to_device(x, "gpu"), backend.to_device(y, "gpu")


def _state(model, optimizer):
    state = dict(model.state_dict(), **optimizer.state_dict())
    return {k: backend.to_numpy(v) for k, v in state.items()}


def _train(sizes, graphed, change_lr_at=None):
    model, opt = _model_and_optimizer()
    weights = backend.to_device(np.linspace(0.5, 2.0, 11), "gpu")
    step = engine.GraphedStep(model, opt, weights) if graphed else (
        lambda x, y: engine.train_step(model, opt, x, y, weights))
    losses = []
    for i, (x, y) in enumerate(_batches(sizes)):
        if i == change_lr_at:
            opt.lr = 0.05
        losses.append(step(x, y))
    return losses, _state(model, opt)


def test_replays_compute_what_eager_steps_compute(device_xp):
    """Batches of 3 with a smaller one among them (an epoch's last), and a new learning rate
    midway: each shape and setting is stepped eagerly once, then recorded and replayed."""
    sizes = [3, 3, 3, 2, 3, 2, 2, 3, 3]
    eager, graphed = _train(sizes, False, change_lr_at=6), _train(sizes, True, change_lr_at=6)
    exact = device_xp is strict_cupy  # on a GPU: the same kernels, compared to float64 rounding
    np.testing.assert_allclose(graphed[0], eager[0], rtol=0 if exact else 1e-12)
    assert graphed[1].keys() == eager[1].keys()
    for key, value in eager[1].items():
        np.testing.assert_allclose(graphed[1][key], value, rtol=0 if exact else 1e-11, atol=0 if exact else 1e-14,
                                   err_msg=key)


def test_a_replayed_step_is_three_launches_and_one_wait(stand_in):
    model, opt = _model_and_optimizer()
    step = engine.GraphedStep(model, opt)
    batches = list(_batches([2, 2, 2]))
    with strict_cupy.counting() as eager:
        step(*batches[0])
    with strict_cupy.counting() as recording:
        step(*batches[1])
    with strict_cupy.counting() as replay:
        step(*batches[2])
    assert eager.ops > 100 and eager.syncs == 1, eager
    assert recording.ops > eager.ops  # the recorded step, its copies back, then its launch
    assert (replay.ops, replay.syncs) == (3, 1)  # the batch into the graph's buffers, the graph; the loss


def test_a_non_finite_loss_leaves_the_weights_as_they_were(stand_in):
    model, opt = _model_and_optimizer()
    step = engine.GraphedStep(model, opt)
    (x, y), = _batches([2])
    step(x, y), step(x, y)  # eager, then recorded
    before = _state(model, opt)
    with pytest.raises(FloatingPointError, match="loss is nan"):
        step(x * float("nan"), y)
    after = _state(model, opt)
    for name in before:
        if "running" not in name:  # batch norm's statistics move in the forward pass, as in train_step
            np.testing.assert_array_equal(after[name], before[name], err_msg=name)
    assert np.isfinite(step(x, y))  # and training goes on from there


def test_what_a_graph_cannot_replay_is_refused(stand_in):
    model, opt = _model_and_optimizer("bayesian-segnet-basic", width=4, kernel=3)
    with pytest.raises(ValueError, match="dropout"):
        engine.GraphedStep(model, opt)
    model, opt = _model_and_optimizer()
    step = engine.GraphedStep(model, opt)
    (x, y), = _batches([2])
    with pytest.raises(ValueError, match="GPU"):
        step(backend.to_numpy(x), backend.to_numpy(y))
    model.eval()
    with pytest.raises(ValueError, match="eval mode"):
        step(x, y)


def test_a_recording_keeps_no_shared_scratch_buffer(stand_in, monkeypatch):
    """A graph holds the memory it was recorded with: a shared scratch buffer, grown by a later
    call and freed, would be handed to other arrays under it. None is taken while recording."""
    from tinysegnet.functional import scratch
    model, opt = _model_and_optimizer("segnet-basic", np.float32, width=16, kernel=7)  # convolutions on scratch
    step = engine.GraphedStep(model, opt)
    (x, y), = _batches([1], np.float32, 32, 48)
    step(x, y)
    taken = []
    monkeypatch.setattr(scratch, "_buffers", _Watched(taken))
    step(x, y)  # recorded
    assert taken == [] and scratch._shared


class _Watched(dict):
    def __init__(self, taken):
        super().__init__()
        self.taken = taken

    def get(self, key, default=None):
        self.taken.append(key)
        return default
