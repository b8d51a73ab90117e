"""The commands end to end on a tiny generated set: train, resume, evaluate, predict."""

import json
import re
import os

import numpy as np
import pytest

from tinysegnet import checkpoint, demo, engine, evaluate, experiments, predict, train, viz
from tinysegnet.data import CLASSES


def _train(tiny_set, out, *extra):
    train.main(["--data-dir", tiny_set, "--size", "32", "48", "--batch-size", "3", "--quiet",
                "--out", str(out), *extra])


@pytest.fixture(scope="module")
def run_dir(tiny_set, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    _train(tiny_set, out, "--epochs", "2")
    return out


def test_run_folder_contents(run_dir, capsys):
    assert sorted(os.listdir(run_dir)) == [".lock", "best.npz", "curves.png", "last.npz", "metrics.csv",
                                           "metrics.jsonl", "predictions.png"]  # .lock: the run's PID
    lines = [json.loads(line) for line in open(run_dir / "metrics.jsonl")]
    assert [r["epoch"] for r in lines] == [1, 2]
    assert all(0 <= r["mIoU"] <= 1 and r["loss"] > 0 and r["val_loss"] > 0 and r["lr"] == 0.1 for r in lines)
    assert all(list(r["class_iou"]) == list(CLASSES) for r in lines)
    assert all(r["total_seconds"] >= r["seconds"] + r["val_seconds"] for r in lines)
    assert lines[0]["finished"] <= lines[1]["finished"]  # ISO times, in order
    table = (run_dir / "metrics.csv").read_text().splitlines()
    assert table[0].split(",")[:6] == ["epoch", "loss", "val_loss", "G", "C", "mIoU"] and len(table) == 3
    assert [float(v) for v in table[2].split(",")[3:6]] == pytest.approx(
        [lines[1][k] for k in ("G", "C", "mIoU")], rel=1e-5)
    _, optim, meta = checkpoint.load(str(run_dir / "last.npz"))
    assert meta["progress"]["epoch"] == 2 and meta["model"]["name"] == "segnet-basic" and optim


def test_resume_continues_as_if_never_stopped(tiny_set, run_dir, tmp_path):
    _train(tiny_set, tmp_path, "--epochs", "1")
    train.main(["--resume", str(tmp_path / "last.npz"), "--epochs", "2", "--quiet"])
    straight, _, _ = checkpoint.load(str(run_dir / "last.npz"))
    resumed, _, meta = checkpoint.load(str(tmp_path / "last.npz"))
    assert meta["progress"]["epoch"] == 2
    for name in straight:
        np.testing.assert_array_equal(straight[name], resumed[name], err_msg=name)


def test_same_seed_same_result(tiny_set, run_dir, tmp_path):
    _train(tiny_set, tmp_path, "--epochs", "2")
    a, _, _ = checkpoint.load(str(run_dir / "last.npz"))
    b, _, _ = checkpoint.load(str(tmp_path / "last.npz"))
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tiny_set, tmp_path):
    _train(tiny_set, tmp_path, "--epochs", "1")
    with pytest.raises(SystemExit, match="loss is (nan|inf).*the checkpoints are .*last.npz"):
        train.main(["--resume", str(tmp_path / "last.npz"), "--epochs", "3", "--lr", "1e30", "--quiet"])
    assert checkpoint.load(str(tmp_path / "last.npz"))[2]["progress"]["epoch"] == 1


def test_bad_arguments_and_data(tmp_path, capsys):
    with pytest.raises(SystemExit):
        train.main(["--epochs", "0"])
    with pytest.raises(SystemExit) as e:
        train.main(["--data-dir", str(tmp_path / "nowhere"), "--quiet"])
    assert e.value.code == 1 and re.search("train: .*data folder not found", capsys.readouterr().err)


@pytest.mark.parametrize("flags, message", [
    (["--device", "cpu"], "give --device gpu"),
    ([], "this run is on the CPU"),  # auto, and CI has no GPU
    (["--model", "bayesian-segnet-basic", "--device", "gpu"], "draws dropout masks"),
])
def test_cuda_graph_misuse_is_one_line_before_anything_is_written(tmp_path, capsys, monkeypatch, flags, message):
    monkeypatch.setenv("TINYSEGNET_DEVICE", "cpu")
    with pytest.raises(SystemExit) as e:
        train.main(["--cuda-graph", "--epochs", "1", "--out", str(tmp_path / "run"), *flags])
    assert e.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "demo", "experiments"])
def test_tf32_on_the_cpu_is_one_line_before_anything_is_written(tmp_path, capsys, monkeypatch, command):
    monkeypatch.setenv("TINYSEGNET_DEVICE", "cpu")
    monkeypatch.delenv("CUPY_TF32", raising=False)  # restored after the test, whatever the command sets
    argv = {"train": ["--epochs", "1", "--out", str(tmp_path / "out")],
            "evaluate": [str(tmp_path / "best.npz"), "--json", str(tmp_path / "out")],
            "predict": [str(tmp_path / "best.npz"), str(tmp_path), "--out", str(tmp_path / "out")],
            "demo": [str(tmp_path / "best.npz")],
            "experiments": ["decoders", "--data-dir", str(tmp_path), "--runs", str(tmp_path / "out")]}[command]
    main = {"train": train.main, "evaluate": evaluate.main, "predict": predict.main, "demo": demo.main,
            "experiments": experiments.main}[command]
    with pytest.raises(SystemExit) as e:
        main([*argv, "--precision", "tf32"])
    assert e.value.code == 2 and "--precision tf32 is a GPU's" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_evaluate_prints_and_writes_json(run_dir, tiny_set, tmp_path, capsys):
    out = tmp_path / "scores.json"
    evaluate.main([str(run_dir / "best.npz"), "--data-dir", tiny_set, "--json", str(out), "--full-res"])
    printed = capsys.readouterr().out
    assert "mIoU" in printed and "BF" in printed and "Bicyclist" in printed
    scores = json.loads(out.read_text())
    assert set(scores) >= {"G", "C", "mIoU", "BF", "class_iou"} and 0 <= scores["BF"] <= 1
    # what was scored, said with the scores
    assert scores["checkpoint"] == str(run_dir / "best.npz") and scores["split"] == "val"
    assert scores["size"] == [32, 48] and scores["full_res"] and scores["classes"] == list(CLASSES)
    assert scores["samples"] == 0 and scores["void"] == 11 and scores["images"] == 3
    confusion = np.array(scores["confusion"])
    assert confusion.shape == (11, 11) and confusion.sum() > 0
    assert scores["G"] == pytest.approx(np.trace(confusion) / confusion.sum())


def test_evaluate_draws_the_confusion_matrix(run_dir, tiny_set, tmp_path):
    from PIL import Image
    evaluate.main([str(run_dir / "best.npz"), "--data-dir", tiny_set, "--confusion", str(tmp_path / "c.png")])
    with Image.open(tmp_path / "c.png") as im:
        assert im.size[0] > 400 and im.size[1] > 400
    with pytest.raises(SystemExit) as e:  # never over an existing file unless asked
        evaluate.main([str(run_dir / "best.npz"), "--data-dir", tiny_set, "--confusion", str(tmp_path / "c.png")])
    assert e.value.code == 2


def test_evaluate_after_recomputing_bn(run_dir, tiny_set, tmp_path):
    """The scores are those of the model whose statistics were recomputed over the training split."""
    evaluate.main([str(run_dir / "last.npz"), "--data-dir", tiny_set, "--recompute-bn",
                   "--json", str(tmp_path / "r.json")])
    evaluate.main([str(run_dir / "last.npz"), "--data-dir", tiny_set, "--json", str(tmp_path / "plain.json")])
    recomputed, plain = (json.loads((tmp_path / n).read_text()) for n in ("r.json", "plain.json"))
    assert recomputed["recompute_bn"] and not plain["recompute_bn"]
    model, config, _ = engine.load_run(str(run_dir / "last.npz"))
    train_split, _ = engine.load_eval_data(config, "train", tiny_set)
    val, _ = engine.load_eval_data(config, "val", tiny_set)
    engine.recompute_bn_statistics(model, train_split, config.mean, config.std, 8, config.seed)
    expected, _ = engine.evaluate_split(model, val, config.mean, config.std, 8)
    assert recomputed["confusion"] == expected["confusion"] and recomputed["confusion"] != plain["confusion"]


def test_tensorboard_log_holds_every_epoch(tiny_set, tmp_path):
    import struct
    from tensorboardX.proto import event_pb2
    _train(tiny_set, tmp_path / "tb", "--epochs", "2", "--tensorboard")
    folder = tmp_path / "tb" / "tensorboard"
    scalars = {}
    for name in os.listdir(folder):  # TFRecords: length (u64), its CRC, the event, its CRC
        data = (folder / name).read_bytes()
        while data:
            (length,) = struct.unpack("<Q", data[:8])
            event = event_pb2.Event.FromString(data[12:12 + length])
            data = data[16 + length:]
            for value in event.summary.value:
                scalars.setdefault(value.tag, {})[event.step] = value.simple_value
    lines = [json.loads(line) for line in open(tmp_path / "tb" / "metrics.jsonl")]
    for record in lines:
        assert scalars["val/mIoU"][record["epoch"]] == pytest.approx(record["mIoU"], rel=1e-6)
        assert scalars["loss/val"][record["epoch"]] == pytest.approx(record["val_loss"], rel=1e-6)
    assert "val_iou/Sky" in scalars and set(scalars["lr"]) == {1, 2}
    for name in engine.folders.RUN_FILES:  # the run gone, its events left behind
        (tmp_path / "tb" / name).unlink()
    with pytest.raises(SystemExit) as e:  # a new run never mixes its events with another's
        _train(tiny_set, tmp_path / "tb", "--epochs", "1", "--tensorboard")
    assert e.value.code == 2
    _train(tiny_set, tmp_path / "tb", "--epochs", "1", "--tensorboard", "--overwrite")
    assert len(os.listdir(folder)) == 1


def test_evaluate_refuses_a_bad_checkpoint(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"nope")
    with pytest.raises(SystemExit) as e:
        evaluate.main([str(bad)])
    assert e.value.code == 1 and re.search("evaluate: .*not a tinysegnet checkpoint", capsys.readouterr().err)


def test_predict_writes_label_maps_at_image_size(run_dir, tiny_set, tmp_path, capsys):
    from PIL import Image
    predict.main([str(run_dir / "best.npz"), os.path.join(tiny_set, "val"), "--out", str(tmp_path),
                  "--format", "both"])
    written = sorted(os.listdir(tmp_path))
    assert written[:3] == ["val_0000_ids.png", "val_0000_labels.png", "val_0000_overlay.png"] and len(written) == 9
    with Image.open(tmp_path / "val_0000_ids.png") as im:  # class ids at the image's own size
        assert im.size == (48, 32) and im.mode == "L"
        ids = np.asarray(im)
    assert ids.max() < 11
    with Image.open(tmp_path / "val_0000_labels.png") as im:  # enlarged 12x (32 -> 384), legend below
        labels = np.asarray(im.convert("RGB"))
    assert labels.shape[1] == 48 * 12 and labels.shape[0] > 32 * 12
    np.testing.assert_array_equal(labels[:384:12, ::12], viz.colorize(ids))
    with pytest.raises(SystemExit) as e:
        predict.main([str(run_dir / "best.npz"), str(tmp_path / "missing.png"), "--out", str(tmp_path)])
    assert e.value.code == 1 and re.search("predict: .*no such file", capsys.readouterr().err)


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_a_signal_exits_130_and_leaves_a_resumable_checkpoint(tiny_set, tmp_path, signal_name):
    import signal
    import subprocess
    import sys
    import time
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # SIGINT's default restored: a harness started in the background (nohup ... &) hands its
    # children SIGINT ignored, and Python then never turns it into KeyboardInterrupt
    proc = subprocess.Popen([sys.executable, "-m", "tinysegnet.train", "--data-dir", tiny_set,
                             "--size", "32", "48", "--batch-size", "3", "--epochs", "500", "--quiet",
                             "--out", str(tmp_path)], cwd=root, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while not (tmp_path / "metrics.jsonl").exists() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(getattr(signal, signal_name))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.strip().startswith("train: interrupted:"), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    _, _, meta = checkpoint.load(str(tmp_path / "last.npz"))
    done = meta["progress"]["epoch"]
    assert 1 <= done < 500
    train.main(["--resume", str(tmp_path / "last.npz"), "--epochs", str(done + 1), "--quiet"])
    assert checkpoint.load(str(tmp_path / "last.npz"))[2]["progress"]["epoch"] == done + 1


def test_resume_reports_what_it_changes(tiny_set, tmp_path, capsys):
    _train(tiny_set, tmp_path, "--epochs", "1")
    capsys.readouterr()
    train.main(["--resume", str(tmp_path / "last.npz"), "--epochs", "2", "--lr", "0.05", "--quiet"])
    assert "resumed with lr 0.05 (was 0.1)" in capsys.readouterr().out


def test_a_run_with_local_contrast_normalisation_remembers_it(tiny_set, tmp_path, capsys):
    """--input-norm lcn: the run keeps it, and evaluate and predict feed the model the same way."""
    _train(tiny_set, tmp_path / "lcn", "--epochs", "1", "--input-norm", "lcn")
    model, config, _ = engine.load_run(str(tmp_path / "lcn" / "best.npz"))
    assert config.input_norm == "lcn"
    val, _ = engine.load_eval_data(config, "val", tiny_set)
    expected, _ = engine.evaluate_split(model, val, config.mean, config.std, 8, norm="lcn")
    evaluate.main([str(tmp_path / "lcn" / "best.npz"), "--json", str(tmp_path / "s.json")])
    assert json.loads((tmp_path / "s.json").read_text())["confusion"] == expected["confusion"]
    record = json.loads((tmp_path / "lcn" / "metrics.jsonl").read_text())
    assert record["mIoU"] == pytest.approx(expected["mIoU"])  # validation during training: LCN too
    predict.main([str(tmp_path / "lcn" / "best.npz"), os.path.join(tiny_set, "val"), "--out", str(tmp_path / "p"),
                  "--format", "index"])
    with pytest.raises(SystemExit) as e:  # fixed for the run's life
        train.main(["--resume", str(tmp_path / "lcn" / "last.npz"), "--epochs", "2", "--input-norm", "standardize"])
    assert e.value.code == 2
