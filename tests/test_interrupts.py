"""Ctrl-C or SIGTERM at any moment: the resumed run ends bit-identical to an uninterrupted one.

Interrupts are injected in-process at chosen moments (mid-epoch, inside each checkpoint
write, while the pictures are drawn, while the synthetic set is generated); one test sends
real signals to a real process.
"""

import json
import os

import numpy as np
import pytest

from tinysegnet import checkpoint, engine, viz

EPOCHS = 3


def _config(tiny_set, epochs=EPOCHS):
    return engine.RunConfig.for_data(tiny_set, size=(32, 48), batch_size=3, epochs=epochs, device="cpu")


@pytest.fixture(scope="module")
def straight(tiny_set, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("straight"))
    engine.fit(engine.start(_config(tiny_set), out))
    return out


def _finish(out):
    """Resume from last.npz (or start again where nothing was saved) up to EPOCHS."""
    last = os.path.join(out, "last.npz")
    return engine.fit(engine.restore(last, epochs=EPOCHS)) if os.path.exists(last) else None


def _without_seconds(progress):
    return dict(progress, history=[_untimed(r) for r in progress["history"]])


def _untimed(record):
    """An epoch's record without what the clock says (its durations and when it finished)."""
    return {k: v for k, v in record.items() if not k.endswith("seconds") and k != "finished"}


def assert_same_run(a, b):
    for name in ("last.npz", "best.npz"):
        ma, oa, meta_a = checkpoint.load(os.path.join(a, name))
        mb, ob, meta_b = checkpoint.load(os.path.join(b, name))
        for key in ma:
            np.testing.assert_array_equal(ma[key], mb[key], err_msg=f"{name} {key}")
        for key in oa:
            np.testing.assert_array_equal(oa[key], ob[key], err_msg=f"{name} {key}")
        assert _without_seconds(meta_a["progress"]) == _without_seconds(meta_b["progress"])
    lines = [[_untimed(json.loads(line)) for line in open(os.path.join(d, "metrics.jsonl"))]
             for d in (a, b)]
    assert lines[0] == lines[1]
    assert not [f for f in os.listdir(b) if f.startswith(".tmp-")]  # no temporary left behind


@pytest.mark.slow
def test_mid_epoch(tiny_set, straight, tmp_path):
    run = engine.start(_config(tiny_set), str(tmp_path))

    def ctrl_c(done, loss):  # in the second batch of epoch 2
        if run.progress["epoch"] == 1 and done > 3:
            raise KeyboardInterrupt
    with pytest.raises(engine.Interrupted) as e:
        engine.fit(run, on_batch=ctrl_c)
    assert e.value.checkpoint == os.path.join(str(tmp_path), "last.npz") and e.value.epoch == 2
    _finish(str(tmp_path))
    assert_same_run(straight, str(tmp_path))


@pytest.mark.slow
@pytest.mark.parametrize("nth_write", [1, 2, 3, 4, 5])
def test_inside_a_checkpoint_write(tiny_set, straight, tmp_path, monkeypatch, nth_write):
    """The n-th checkpoint write (best.npz and last.npz, epoch after epoch) is cut off halfway."""
    real, calls = np.savez, []

    def savez(f, **arrays):
        calls.append(1)
        if len(calls) == nth_write:
            f.write(b"PK\x03\x04 half a file")
            raise KeyboardInterrupt
        return real(f, **arrays)
    monkeypatch.setattr(checkpoint.np, "savez", savez)
    with pytest.raises(engine.Interrupted):
        engine.fit(engine.start(_config(tiny_set), str(tmp_path)))
    monkeypatch.setattr(checkpoint.np, "savez", real)
    if not os.path.exists(tmp_path / "last.npz"):  # cut off before the first epoch was saved
        engine.fit(engine.start(_config(tiny_set), str(tmp_path)))  # the only way on: again
    else:
        _finish(str(tmp_path))
    assert_same_run(straight, str(tmp_path))


@pytest.mark.slow
def test_while_the_pictures_are_drawn(tiny_set, straight, tmp_path, monkeypatch):
    real = viz.training_curves

    def curves(history, path, best_epoch):
        if len(history) == 2:
            raise KeyboardInterrupt
        return real(history, path, best_epoch)
    monkeypatch.setattr(viz, "training_curves", curves)
    with pytest.raises(engine.Interrupted) as e:
        engine.fit(engine.start(_config(tiny_set), str(tmp_path)))
    assert e.value.epoch == 3  # epoch 2 was saved before its pictures
    monkeypatch.setattr(viz, "training_curves", real)
    _finish(str(tmp_path))
    assert_same_run(straight, str(tmp_path))


def test_while_the_synthetic_set_is_generated(tmp_path, monkeypatch, capsys):
    from tinysegnet import train
    from tinysegnet.data import synthetic
    monkeypatch.setattr(synthetic, "default_root", lambda: str(tmp_path / "data" / "synthetic"))
    real, calls = synthetic.render_scene, []

    def render(rng, size):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(rng, size)
    monkeypatch.setattr(synthetic, "render_scene", render)
    with pytest.raises(SystemExit) as e:
        train.main(["--size", "20", "24", "--epochs", "1", "--quiet", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert e.value.code == 130 and len(err.strip().splitlines()) == 1 and "interrupted" in err
    assert os.listdir(tmp_path / "data") == []  # no half-generated set, no temporary folder


# -- killed after the last epoch's last.npz: the same command finishes the run --------------------

def test_a_run_killed_after_its_final_checkpoint_is_finished_by_resuming_it(straight, tmp_path):
    import shutil
    from tinysegnet import train
    out = tmp_path / "killed"
    shutil.copytree(straight, out)
    history, table = (out / "metrics.jsonl").read_text(), (out / "metrics.csv").read_text()
    for name in ("metrics.jsonl", "metrics.csv", "curves.png", "predictions.png"):
        (out / name).unlink()
    assert engine.folders.unfinished(str(out), EPOCHS) == ["metrics.jsonl", "metrics.csv", "curves.png",
                                                           "predictions.png"]
    train.main(["--resume", str(out / "last.npz"), "--epochs", str(EPOCHS), "--quiet", "--device", "cpu"])
    assert (out / "metrics.jsonl").read_text() == history and (out / "metrics.csv").read_text() == table
    assert (out / "curves.png").is_file() and (out / "predictions.png").is_file()
    assert engine.folders.unfinished(str(out), EPOCHS) == []
    with pytest.raises(SystemExit) as e:  # a whole run: nothing to finish, as before
        train.main(["--resume", str(out / "last.npz"), "--epochs", str(EPOCHS), "--quiet", "--device", "cpu"])
    assert e.value.code == 2


def test_a_batch_norm_recomputation_killed_between_the_checkpoints_is_finished_by_running_it_again(
        straight, tmp_path, monkeypatch):
    import shutil
    from tinysegnet import train
    from tinysegnet.engine import training
    out = tmp_path / "recompute"
    shutil.copytree(straight, out)
    argv = ["--resume", str(out / "last.npz"), "--epochs", str(EPOCHS), "--quiet", "--device", "cpu",
            "--recompute-bn"]
    real_save, saved = training.save, []

    def killed_after_last(run, name):
        if name == "best.npz":
            raise KeyboardInterrupt
        saved.append(name)
        return real_save(run, name)
    monkeypatch.setattr(training, "save", killed_after_last)
    with pytest.raises(SystemExit):
        train.main(argv)
    monkeypatch.setattr(training, "save", real_save)
    assert saved == ["last.npz"]
    best_before = checkpoint.load(str(out / "best.npz"))[0]
    assert engine.folders.unfinished(str(out), EPOCHS, recompute_bn=True) == ["batch-norm recomputation"]
    last_before = (out / "last.npz").read_bytes()
    train.main(argv)
    assert (out / "last.npz").read_bytes() == last_before  # not recomputed twice
    best_after = checkpoint.load(str(out / "best.npz"))[0]
    assert any(not np.array_equal(best_before[k], best_after[k]) for k in best_before if "running" in k)
    assert engine.folders.unfinished(str(out), EPOCHS, recompute_bn=True) == []
