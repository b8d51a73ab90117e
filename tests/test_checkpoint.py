import os

import numpy as np
import pytest

from tinysegnet import checkpoint


def test_roundtrip(tmp_path):
    path = str(tmp_path / "c.npz")
    checkpoint.save(path, {"w": np.arange(3.0)}, {"epoch": 2, "size": [4, 5]}, {"velocity.0": np.ones(2)})
    model, optim, meta = checkpoint.load(path)
    np.testing.assert_array_equal(model["w"], [0, 1, 2])
    np.testing.assert_array_equal(optim["velocity.0"], [1, 1])
    assert meta == {"epoch": 2, "size": [4, 5]}
    assert os.listdir(tmp_path) == ["c.npz"]  # the temporary file was renamed, not left


def test_failed_save_keeps_the_old_file(tmp_path):
    path = str(tmp_path / "c.npz")
    checkpoint.save(path, {"w": np.zeros(2)}, {"epoch": 1})
    with pytest.raises(TypeError):
        checkpoint.save(path, {"w": np.zeros(2)}, {"epoch": object()})  # not JSON
    assert checkpoint.load(path)[2] == {"epoch": 1}
    assert os.listdir(tmp_path) == ["c.npz"]


def test_pickles_are_refused(tmp_path):
    path = str(tmp_path / "evil.npz")
    np.savez(path, **{"meta": np.array("{}"), "model/w": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(ValueError, match="not a tinysegnet checkpoint"):
        checkpoint.load(path)


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(b"junk")
    with pytest.raises(ValueError, match="junk.npz: not a tinysegnet checkpoint"):
        checkpoint.load(str(path))
    with pytest.raises(FileNotFoundError):
        checkpoint.load(str(tmp_path / "missing.npz"))
