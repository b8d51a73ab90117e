"""The engine as a library: the run config and its checkpoint metadata, fit without printing."""

import ast
import os

import numpy as np

import pytest

from tinysegnet import engine
from tinysegnet.data import CLASSES, load_camvid_split
from tinysegnet.engine import ConfigError, RunConfig

# The divergence tests overflow on purpose: NumPy's warnings about it are expected noise.
deliberate_overflow = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMMANDS = {"train", "evaluate", "predict", "export", "bench", "experiments", "lessons", "pretrained", "demo"}


def test_config_round_trips_through_json():
    config = RunConfig.for_data("/data/camvid", model="segnet", lr=0.05, mean=[1.0, 2.0, 3.0])
    assert (config.size, config.batch_size, config.epochs) == ((90, 120), 12, 60)  # CamVid's defaults
    assert RunConfig.from_json(config.to_json()) == config


@pytest.mark.parametrize("field,value,message", [
    ("lr", float("nan"), "lr must be a finite number > 0"),
    ("momentum", 1.5, "momentum must be a number in"),
    ("weight_decay", float("inf"), "weight_decay must be a finite"),
    ("batch_size", 0, "batch_size must be an integer >= 1"),
    ("size", [90], "size must be two positive integers"),
    ("class_weighting", "inverse", "class_weighting must be"),
    ("flip", "yes", "flip must be true or false"),
])
def test_bad_fields_are_named_in_one_line(field, value, message):
    data = dict(RunConfig().to_json(), **{field: value})
    with pytest.raises(ConfigError, match=message) as e:
        RunConfig.from_json(data)
    assert "\n" not in str(e.value)


def test_missing_and_unknown_fields_are_named():
    data = RunConfig().to_json()
    del data["seed"]
    with pytest.raises(ConfigError, match="missing field seed"):
        RunConfig.from_json(data)
    with pytest.raises(ConfigError, match="unknown field colour"):
        RunConfig.from_json(dict(RunConfig().to_json(), colour="red"))


def test_metadata_format_is_checked():
    meta = engine.config.checkpoint_meta(RunConfig(), {"name": "segnet-basic"},
                                  dict(epoch=1, best_miou=0.1, best_epoch=1, history=[], rng={}))
    config, model, progress = engine.config.read_meta(meta, "x.npz")
    assert config == RunConfig() and model == {"name": "segnet-basic"} and progress["epoch"] == 1
    with pytest.raises(ConfigError, match="x.npz: checkpoint format 2 is newer"):
        engine.config.read_meta(dict(meta, format=2), "x.npz")
    with pytest.raises(ConfigError, match="x.npz: metadata has no 'progress'"):
        engine.config.read_meta({k: v for k, v in meta.items() if k != "progress"}, "x.npz")


def test_checkpoints_of_tinysegnet_0_2_are_read():
    legacy = dict(model={"name": "segnet-basic", "n_classes": 11}, epoch=4, size=[32, 48],
                  data_dir=None, data_seed=0, mean=[1.0] * 3, std=[2.0] * 3, class_weights=None,
                  optimizer=dict(lr=0.1, momentum=0.9, weight_decay=5e-4), batch_size=3,
                  flip=True, best_miou=0.2, best_epoch=3, history=[], rng={})
    config, model, progress = engine.config.read_meta(legacy, "old.npz")
    assert config.size == (32, 48) and config.class_weighting == "none" and progress["epoch"] == 4


def test_fit_is_silent_and_reports_through_callbacks(tiny_set, tmp_path, capsys):
    config = RunConfig.for_data(tiny_set, size=(32, 48), batch_size=3, epochs=2, device="cpu")
    run = engine.start(config, str(tmp_path))
    seen = []
    history = engine.fit(run, on_epoch=lambda run, record, best: seen.append(record["epoch"]))
    assert seen == [1, 2] and [r["epoch"] for r in history] == [1, 2]
    assert capsys.readouterr().out == ""
    model, saved, progress = engine.load_run(str(tmp_path / "last.npz"))
    assert saved == run.config and saved.mean is not None and progress["epoch"] == 2


def test_divergence_in_the_first_epoch_names_no_checkpoint(tiny_set, tmp_path):
    config = RunConfig.for_data(tiny_set, size=(32, 48), batch_size=3, epochs=1, lr=1e30, device="cpu")
    with pytest.raises(engine.Diverged) as e:
        engine.fit(engine.start(config, str(tmp_path)))
    assert e.value.last_good is None and "loss is" in str(e.value)
    assert not os.path.exists(tmp_path / "last.npz")


def _command_files(name):
    """(path, the import level that reaches tinysegnet) of a command module or package."""
    folder = os.path.join(ROOT, "tinysegnet", name)
    if os.path.isdir(folder):
        return [(os.path.join(folder, f), 2) for f in os.listdir(folder) if f.endswith(".py")]
    return [(folder + ".py", 1)]


def test_no_command_imports_another_command():
    for name in COMMANDS:
        imported = set()
        for path, level in _command_files(name):
            for node in ast.walk(ast.parse(open(path).read())):
                if isinstance(node, ast.ImportFrom) and node.level == level:
                    imported |= {node.module} if node.module else {a.name for a in node.names}
        assert imported, name  # the walk found the command's imports
        assert not {m.split(".")[0] for m in imported} & (COMMANDS - {name}), (name, imported)


def test_the_engine_never_prints_or_parses_arguments():
    folder = os.path.join(ROOT, "tinysegnet", "engine")
    for name in os.listdir(folder):
        if name.endswith(".py"):
            tree = ast.parse(open(os.path.join(folder, name)).read())
            calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
            modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
            assert "print" not in calls and "argparse" not in modules, name


@deliberate_overflow
def test_a_finite_loss_over_non_finite_statistics_still_stops(tiny_set, tmp_path):
    """One step per epoch at a huge lr: the loss stays finite while a batch-norm variance
    overflows. The run stops before saving it."""
    config = RunConfig.for_data(tiny_set, size=(32, 48), batch_size=100, epochs=3, lr=1e6, device="cpu")
    with pytest.raises(engine.Diverged, match="holds non-finite values after epoch") as e:
        engine.fit(engine.start(config, str(tmp_path)))
    if e.value.last_good:  # the last good checkpoint is good: loads, finite, an earlier epoch
        _, _, progress = engine.load_run(e.value.last_good)
        assert f"after epoch {progress['epoch'] + 1}" in str(e.value)
    else:
        assert not os.path.exists(tmp_path / "last.npz")


def test_metrics_are_strict_json(tiny_set, tmp_path):
    import json
    import shutil
    from PIL import Image
    data = tmp_path / "data"
    shutil.copytree(tiny_set, data)
    for name in os.listdir(data / "valannot"):  # no Pole in val: its IoU is undefined (NaN)
        labels = np.asarray(Image.open(data / "valannot" / name))
        Image.fromarray(np.where(labels == 2, 11, labels).astype(np.uint8)).save(data / "valannot" / name)
    config = RunConfig.for_data(str(data), size=(32, 48), batch_size=3, epochs=1, device="cpu")
    engine.fit(engine.start(config, str(tmp_path / "run")))
    val = load_camvid_split(str(data), "val", (32, 48))
    absent = {name for c, name in enumerate(CLASSES) if not (val.labels == c).any()}
    assert "Pole" in absent
    for line in open(tmp_path / "run" / "metrics.jsonl"):
        record = json.loads(line, parse_constant=lambda c: pytest.fail(f"bare {c} in metrics.jsonl"))
        assert list(record["class_iou"]) == list(CLASSES)
        for name, iou in record["class_iou"].items():
            assert (iou is None) == (name in absent) and (iou is None or 0 <= iou <= 1), name


@deliberate_overflow
def test_train_step_is_one_sgd_step_and_refuses_a_non_finite_loss():
    from tinysegnet.models import SegNetBasic
    from tinysegnet.optim import SGD
    rng = np.random.default_rng(0)
    model = SegNetBasic(n_classes=3, width=4, kernel=3, seed=0).train()
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = rng.standard_normal((2, 3, 16, 16)).astype(np.float32)
    y = rng.integers(0, 3, (2, 16, 16)).astype(np.uint8)
    y[0, 0] = 11  # void
    losses = [engine.train_step(model, optimizer, x, y) for _ in range(20)]
    assert isinstance(losses[0], float) and losses[-1] < 0.8 * losses[0]
    before = {k: v.copy() for k, v in model.state_dict().items()}
    with pytest.raises(FloatingPointError, match="loss is (inf|nan)"):
        engine.train_step(model, optimizer, x, y, np.array([np.inf, 1, 1], np.float32))
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before if "running" not in k)


def test_inference_on_a_gpu_hands_the_scratch_back_and_the_cpu_keeps_it(stand_in):
    from tinysegnet import models
    from tinysegnet.data.split import Split
    from tinysegnet.functional import scratch
    rng = np.random.default_rng(0)
    split = Split(rng.integers(0, 256, (2, 45, 60, 3), dtype=np.uint8), np.zeros((2, 45, 60), np.uint8),
                  ["a", "b"])
    mean, std = np.full(3, 100.0), np.full(3, 50.0)

    def modules_holding():
        return {key[1] for key in scratch._buffers}
    scratch.release()
    engine.predict_split(models.build("segnet-basic").eval(), split, mean, std)
    assert modules_holding() == {"numpy"}
    gpu = models.build("segnet-basic").to("gpu").eval()
    gpu.forward(stand_in.asarray(rng.standard_normal((2, 3, 45, 60), dtype=np.float32)))
    assert stand_in.__name__ in modules_holding()  # a forward alone keeps them
    for inference in (lambda: engine.predict_split(gpu, split, mean, std),
                      lambda: engine.inference.validate(gpu, split, mean, std),
                      lambda: engine.predict(gpu, split.images[0], mean, std, (45, 60))):
        gpu.forward(stand_in.asarray(rng.standard_normal((2, 3, 45, 60), dtype=np.float32)))
        inference()
        assert modules_holding() == {"numpy"}
