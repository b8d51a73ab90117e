import os

import numpy as np
import pytest

from tinysegnet.errors import DataError
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
    with pytest.raises(DataError, match="missing.npz: checkpoint not found"):
        checkpoint.load(str(tmp_path / "missing.npz"))


def test_non_finite_arrays_are_never_saved_nor_loaded(tmp_path):
    path = str(tmp_path / "c.npz")
    checkpoint.save(path, {"w": np.zeros(2)}, {"epoch": 1})
    with pytest.raises(checkpoint.NonFiniteError, match="model/bn.running_var holds non-finite"):
        checkpoint.save(path, {"w": np.zeros(2), "bn.running_var": np.array([1.0, np.inf])}, {"epoch": 2})
    assert checkpoint.load(path)[2] == {"epoch": 1}  # the good one kept
    np.savez(path, **{"meta": np.array("{}"), "model/w": np.array([np.nan])})  # written by someone else
    with pytest.raises(ValueError, match="model/w holds non-finite values.*refusing to load"):
        checkpoint.load(path)


@pytest.mark.parametrize("make,reason", [
    (lambda p: open(p, "wb").close(), "empty file"),
    (lambda p: np.save(open(p, "wb"), np.zeros(3)), "a single NumPy array"),
    (lambda p: np.savez(p, w=np.zeros(3)), "no metadata"),
    (lambda p: open(p, "wb").write(open(__file__, "rb").read()[:50]), "not a tinysegnet checkpoint"),
])
def test_malformed_files_are_named_in_one_line(tmp_path, make, reason):
    path = str(tmp_path / "x.npz")
    make(path)
    with pytest.raises(ValueError, match=reason) as e:
        checkpoint.load(path)
    assert str(e.value).startswith(path) and "\n" not in str(e.value)


def test_metadata_is_strict_json(tmp_path):
    import json
    path = str(tmp_path / "c.npz")
    checkpoint.save(path, {"w": np.zeros(2)}, {"iou": [0.5, float("nan")]})
    with np.load(path) as data:
        assert json.loads(str(data["meta"]), parse_constant=lambda c: pytest.fail(c)) == {"iou": [0.5, None]}
