"""SegNet's encoder from a torchvision vgg16 state_dict (written here: no download)."""

import numpy as np
import pytest

from tinysegnet import nn, train
from tinysegnet.errors import DataError
from tinysegnet.interop.vgg16 import CONV_INDICES, load_vgg16_encoder
from tinysegnet.models import build

torch = pytest.importorskip("torch")

VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def vgg16_features():
    """torchvision's ``vgg16().features``, layer for layer (torchvision's own ``make_layers``)."""
    layers, channels = [], 3
    for v in VGG16:
        if v == "M":
            layers.append(torch.nn.MaxPool2d(2, 2))
        else:
            layers += [torch.nn.Conv2d(channels, v, 3, padding=1), torch.nn.ReLU(inplace=True)]
            channels = v
    return torch.nn.Sequential(*layers)


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    torch.manual_seed(0)
    features = vgg16_features()
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    state["classifier.6.bias"] = torch.zeros(1000)  # the fully connected head: in the file, unused
    path = tmp_path_factory.mktemp("vgg") / "vgg16.pth"
    torch.save(state, path)
    return str(path), features


def test_every_encoder_convolution_is_vggs_and_the_forward_is_vggs(vgg_file):
    path, features = vgg_file
    model = load_vgg16_encoder(build("segnet"), path)
    convs = [m for m in model.encoder.modules() if isinstance(m, nn.Conv2d)]
    assert [i for i, m in enumerate(features) if isinstance(m, torch.nn.Conv2d)] == list(CONV_INDICES)
    for conv, index in zip(convs, CONV_INDICES):
        np.testing.assert_array_equal(conv.weight.data, features[index].weight.detach().numpy())
        np.testing.assert_array_equal(conv.bias.data, features[index].bias.detach().numpy())
    # with every batch norm made the identity, the encoder is VGG16's features
    for bn in (m for m in model.encoder.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.running_var[...] = 1 - bn.eps
        bn.beta.data[...] = 0
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    ours = model.eval().encoder.forward(x)
    theirs = features.eval()(torch.from_numpy(x)).detach().numpy()
    assert float(np.abs(ours - theirs).max()) <= 1e-4 * float(np.abs(theirs).max())


def test_anything_else_is_one_line(vgg_file, tmp_path):
    path, features = vgg_file
    other = {f"features.{k}": v for k, v in features.state_dict().items() if not k.startswith("28.")}
    torch.save(other, tmp_path / "vgg13ish.pth")
    with pytest.raises(DataError, match="not a torchvision VGG16 state_dict .features.28.weight is missing"):
        load_vgg16_encoder(build("segnet"), str(tmp_path / "vgg13ish.pth"))
    (tmp_path / "text.pth").write_text("hello")
    with pytest.raises(DataError, match="not a PyTorch state_dict"):
        load_vgg16_encoder(build("segnet"), str(tmp_path / "text.pth"))


def test_train_with_encoder_weights(vgg_file, tiny_set, tmp_path, capsys):
    path, features = vgg_file
    with pytest.raises(SystemExit) as e:  # VGG16 fits SegNet's encoder, not SegNet-Basic's
        train.main(["--encoder-weights", path, "--epochs", "1"])
    assert e.value.code == 2 and "--model segnet" in capsys.readouterr().err
    train.main(["--model", "segnet", "--encoder-weights", path, "--data-dir", tiny_set, "--size", "32", "48",
                "--epochs", "1", "--batch-size", "3", "--quiet", "--device", "cpu", "--out", str(tmp_path / "run")])
    from tinysegnet import engine
    _, config, _ = engine.load_run(str(tmp_path / "run" / "last.npz"))
    assert config.encoder_weights == path  # the run says how it began
