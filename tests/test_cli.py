"""Our bugs keep their traceback: a layer made to raise reaches the user as itself from every
command that runs a model, never as a one-line "mistake" of theirs; and a user's mistake is
one line with its exit code."""

import os

import numpy as np
import pytest
from PIL import Image

from tinysegnet import cli, evaluate, experiments, functional, predict, train
from tinysegnet.errors import DataError, Misuse, UserError


class OurBug(ValueError):
    """Stands for a shape error inside a layer: a ValueError, like NumPy's."""


def _broken_relu(*args, **kwargs):
    raise OurBug("operands could not be broadcast together")


@pytest.fixture(scope="module")
def trained(tiny_set, tmp_path_factory):
    out = tmp_path_factory.mktemp("bug") / "run"
    train.main(["--data-dir", tiny_set, "--size", "32", "48", "--batch-size", "3", "--epochs", "1",
                "--quiet", "--out", str(out), "--device", "cpu"])
    image = out.parent / "street.png"
    Image.fromarray(np.zeros((32, 48, 3), np.uint8)).save(image)
    return out, image


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "experiments"])
def test_a_layer_that_raises_keeps_its_traceback_in_every_command(trained, tiny_set, tmp_path, command):
    out, image = trained
    argv = {
        "train": (train.main, ["--data-dir", tiny_set, "--size", "32", "48", "--epochs", "1", "--quiet",
                               "--out", str(tmp_path / "new"), "--device", "cpu"]),
        "evaluate": (evaluate.main, [str(out / "best.npz"), "--device", "cpu"]),
        "predict": (predict.main, [str(out / "best.npz"), str(image), "--out", str(tmp_path / "p"),
                                   "--device", "cpu"]),
        "experiments": (experiments.main, ["decoders", "--data-dir", tiny_set, "--size", "32", "48",
                                           "--epochs", "1", "--batch-size", "3", "--variants", "segnet-basic",
                                           "--runs", str(tmp_path / "runs"), "--device", "cpu"]),
    }[command]
    with functional.use(relu_forward=_broken_relu), pytest.raises(OurBug, match="broadcast"):
        argv[0](argv[1])


@pytest.mark.parametrize("error,code", [(Misuse("a bad flag"), 2), (DataError("a broken image"), 1),
                                        (UserError("the machine said no"), 1)])
def test_a_users_mistake_is_one_line_and_its_exit_code(capsys, error, code):
    def body():
        raise error
    with pytest.raises(SystemExit) as e:
        cli.run_main("train", body)
    assert e.value.code == code
    assert capsys.readouterr().err == f"train: {error}\n"


def test_sigterm_is_ctrl_c_in_every_command_and_the_handler_comes_back(capsys):
    import signal
    before = signal.getsignal(signal.SIGTERM)

    def body():
        os.kill(os.getpid(), signal.SIGTERM)
    with pytest.raises(SystemExit) as e:
        cli.run_main("train", body)
    assert e.value.code == 130 and "interrupted" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is before

