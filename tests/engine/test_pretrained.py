"""The model shipped with the package: it loads, it segments, its card tells the truth."""

import hashlib
import os

import numpy as np
import pytest

from tinysegnet import engine, predict, pretrained
from tinysegnet.data import load_synthetic_split
from tinysegnet.engine import pretrained as shipped

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "camvid")


def test_the_shipped_model_loads_and_segments():
    model, config, progress = engine.load_pretrained("camvid")
    assert config.model == "segnet-basic" and tuple(config.size) == (90, 120)
    assert model.num_parameters() == 1_416_075 and progress["epoch"] == shipped.card()["epoch"]
    image = load_synthetic_split("val", (45, 60)).images[0]
    ids = engine.predict(model, image, config.mean, config.std, config.size)
    assert ids.shape == (45, 60) and ids.max() < 11


def test_its_card_names_the_file_and_the_protocol():
    info = shipped.card("camvid")
    path = shipped.pretrained_path("camvid")
    with open(path, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == info["sha256"]
    assert info["bytes"] == os.path.getsize(path) < 8_000_000
    assert info["trained_by"] == shipped.SHIPPED["camvid"][1]
    _, config, _ = engine.load_run(path)
    assert all(getattr(config, k) == (tuple(v) if k == "size" else v) or list(getattr(config, k)) == v
               for k, v in shipped.PROTOCOL["camvid"].items())


def test_predict_with_the_pretrained_model(tmp_path, capsys):
    from PIL import Image
    image = tmp_path / "street.png"
    Image.fromarray(load_synthetic_split("val", (45, 60)).images[1]).save(image)
    predict.main(["--pretrained", "camvid", str(image), "--out", str(tmp_path / "out"), "--format", "index"])
    with Image.open(tmp_path / "out" / "street_ids.png") as im:
        assert im.size == (60, 45)
    with pytest.raises(SystemExit) as e:  # a checkpoint and no image: one line
        predict.main([str(image), "--out", str(tmp_path / "o2")])
    assert e.value.code == 2


def test_pack_refuses_a_run_of_another_protocol(tiny_set, tmp_path, capsys):
    from tinysegnet import train
    train.main(["--data-dir", tiny_set, "--size", "32", "48", "--epochs", "1", "--quiet", "--device", "cpu",
                "--out", str(tmp_path / "run")])
    with pytest.raises(SystemExit) as e:
        pretrained.main(["pack", str(tmp_path / "run" / "best.npz"), "--name", "camvid", "--data-dir", tiny_set])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "size [32, 48] where it is [90, 120]" in err and "epochs 1 where it is 60" in err


@pytest.mark.slow
@pytest.mark.camvid
def test_packing_again_reproduces_the_card(tmp_path):
    """The card's val scores are what the shipped weights score on CamVid's val split."""
    if not os.path.isdir(SHARED):
        pytest.skip("../shared/camvid is not here")
    again = shipped.pack(shipped.pretrained_path("camvid"), "camvid", SHARED, folder=str(tmp_path))
    card = shipped.card("camvid")
    for key, scores in card["scores"].items():
        for name in ("G", "C", "mIoU", "BF"):
            assert again["scores"][key][name] == pytest.approx(scores[name], abs=1e-4), (key, name)
    np.testing.assert_array_equal(np.load(tmp_path / "camvid.npz")["model/classifier.weight"],
                                  np.load(shipped.pretrained_path("camvid"))["model/classifier.weight"])
