"""Hostile and careless inputs to every command: one line, the right exit code, nothing lost.

Each case runs a command in-process and asserts: it exits with the expected code (2 for
misuse, 1 for bad inputs), says so in one line naming the problem, raises nothing else (a
traceback would fail the test), and leaves every file that existed before unchanged.
"""

import hashlib
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from tinysegnet import backend, bench, checkpoint, evaluate, experiments, export, predict, train


def _snapshot(root):
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            out[path] = hashlib.sha1(open(path, "rb").read()).hexdigest()
    return out


def _copy_set(src, dst, change=None):
    shutil.copytree(src, dst)
    if change:
        change(dst)
    return dst


def _relabel(value):
    def change(root):
        for name in os.listdir(os.path.join(root, "trainannot")):
            path = os.path.join(root, "trainannot", name)
            label = np.asarray(Image.open(path))
            Image.fromarray(np.full_like(label, value)).save(path)
    return change


def _first(root, folder):
    return os.path.join(root, folder, sorted(os.listdir(os.path.join(root, folder)))[0])


def _sixteen_bit(root):
    path = _first(root, "train")
    Image.fromarray((np.asarray(Image.open(path).convert("L")).astype(np.uint16) * 200)).save(path)


def _palette(root):
    path = _first(root, "trainannot")
    im = Image.open(path).convert("P")
    im.putpalette([255 - v for v in range(256) for _ in range(3)])
    im.save(path)


def _bom(root):
    path = os.path.join(root, "train.txt")
    open(path, "wb").write(b"\xef\xbb\xbf" + open(path, "rb").read())


def _latin1(root):
    path = os.path.join(root, "train.txt")
    open(path, "ab").write("train/caf\xe9.png trainannot/caf\xe9.png\n".encode("latin-1"))


def _small_label(root):
    path = _first(root, "trainannot")
    Image.fromarray(np.asarray(Image.open(path))[:-2]).save(path)


@pytest.fixture(scope="module")
def world(tiny_set, tmp_path_factory):
    """A trained run and a gallery of broken files and data sets, under one root."""
    root = tmp_path_factory.mktemp("hostile")
    w = {"root": str(root), "set": tiny_set}
    run = root / "run"
    train.main(["--data-dir", tiny_set, "--size", "32", "48", "--batch-size", "3", "--epochs", "2",
                "--quiet", "--out", str(run)])
    one = root / "one-epoch"
    train.main(["--data-dir", tiny_set, "--size", "32", "48", "--batch-size", "3", "--epochs", "1",
                "--quiet", "--out", str(one)])
    older = root / "branched"
    shutil.copytree(run, older)
    shutil.copy(one / "last.npz", older / "best.npz")  # best.npz at epoch 1, last.npz at epoch 2
    w.update(run=str(run), last=str(run / "last.npz"), best=str(run / "best.npz"), older=str(older))
    bad = root / "bad"
    bad.mkdir()
    (bad / "empty.npz").write_bytes(b"")
    np.save(open(bad / "array.npz", "wb"), np.zeros(3))
    np.savez(bad / "nometa.npz", w=np.zeros(3))
    state, optim, meta = checkpoint.load(w["last"])
    np.savez(bad / "nonfinite.npz", **{"meta": np.array(json.dumps(meta)),
                                        **{f"model/{k}": v * np.inf for k, v in state.items()}})
    np.savez(bad / "newer.npz", **{"meta": np.array(json.dumps(dict(meta, format=99))),
                                    **{f"model/{k}": v for k, v in state.items()}})
    np.savez(bad / "norun.npz", **{"meta": np.array(json.dumps({k: v for k, v in meta.items() if k != "run"})),
                                    **{f"model/{k}": v for k, v in state.items()}})
    (bad / "a").mkdir()
    (bad / "b").mkdir()
    image = _first(tiny_set, "val")
    for target in ("a/scene.png", "b/scene.png", "x.png", "x.jpg"):
        Image.open(image).convert("RGB").save(bad / target)
    Image.fromarray(np.zeros((8, 8), np.uint16) + 300).save(bad / "deep.png")
    (bad / "a-file").write_text("not a folder")
    predicted = root / "predicted"
    predict.main([w["best"], str(bad / "x.png"), "--out", str(predicted)])
    w.update(bad=str(bad), predicted=str(predicted))
    sets = root / "sets"
    sets.mkdir()
    for name, change in [("void", _relabel(11)), ("outside", _relabel(200)), ("deep", _sixteen_bit),
                         ("palette", _palette), ("bom", _bom), ("latin1", _latin1),
                         ("mismatch", _small_label)]:
        w[f"set-{name}"] = _copy_set(tiny_set, str(sets / name), change)
    w["snapshot"] = _snapshot(root)
    return w


T = ["--data-dir", "{set}", "--size", "32", "48", "--batch-size", "3", "--quiet"]
NEW = T + ["--out", "{root}/new-run"]
CASES = [
    # train: numbers and sizes at parse time (exit 2)
    ("train", NEW + ["--epochs", "0"], 2, "--epochs: must be at least 1"),
    ("train", NEW + ["--epochs", "-3"], 2, "--epochs: must be at least 1"),
    ("train", NEW + ["--epochs", "two"], 2, "--epochs: not an integer"),
    ("train", NEW + ["--batch-size", "0"], 2, "--batch-size: must be at least 1"),
    ("train", NEW + ["--lr", "nan"], 2, "--lr: must be a finite number"),
    ("train", NEW + ["--threads", "0"], 2, "--threads: must be at least 1"),
    ("train", NEW + ["--threads", "many"], 2, "--threads: "),
    ("train", NEW + ["--lr", "inf"], 2, "--lr: must be a finite number"),
    ("train", NEW + ["--lr", "-1"], 2, "--lr: must be a finite number > 0"),
    ("train", NEW + ["--lr", "0"], 2, "--lr: must be a finite number > 0"),
    ("train", NEW + ["--momentum", "nan"], 2, "--momentum: must be a finite number in \\[0, 1\\)"),
    ("train", NEW + ["--momentum", "1"], 2, "--momentum: must be"),
    ("train", NEW + ["--momentum", "-0.1"], 2, "--momentum: must be"),
    ("train", NEW + ["--weight-decay", "inf"], 2, "--weight-decay: must be a finite number"),
    ("train", NEW + ["--weight-decay", "-1"], 2, "--weight-decay: must be"),
    ("train", NEW + ["--seed", "-1"], 2, "--seed: must be 0 or more"),
    ("train", NEW + ["--size", "8", "-3"], 2, "must be at least 1"),
    ("train", NEW + ["--size", "0", "64"], 2, "--size: must be at least 1"),
    ("train", NEW + ["--model", "unet"], 2, "--model: invalid choice"),
    # train: resuming
    ("train", ["--resume", "{last}"], 2, "--resume needs --epochs"),
    ("train", ["--resume", "{last}", "--epochs", "5", "--size", "32", "48"], 2, "--size cannot change on --resume"),
    ("train", ["--resume", "{last}", "--epochs", "5", "--model", "segnet"], 2, "--model cannot change"),
    ("train", ["--resume", "{last}", "--epochs", "5", "--batch-size", "2"], 2, "--batch-size cannot change"),
    ("train", ["--resume", "{last}", "--epochs", "5", "--seed", "3"], 2, "--seed cannot change"),
    ("train", ["--resume", "{last}", "--epochs", "5", "--no-flip"], 2, "--no-flip cannot change"),
    ("train", ["--resume", "{last}", "--epochs", "5", "--class-weights", "none"], 2, "--class-weights cannot change"),
    ("train", ["--resume", "{last}", "--epochs", "1", "--quiet"], 2, "already at epoch 2; .*more than 2"),
    ("train", ["--resume", "{last}", "--epochs", "2", "--quiet"], 2, "already at epoch 2"),
    ("train", ["--resume", "{older}/best.npz", "--epochs", "3", "--quiet"], 2,
     "is epoch 1 but .*last.npz holds epoch 2"),
    ("train", ["--resume", "{bad}/missing.npz", "--epochs", "3"], 1, "missing.npz: checkpoint not found"),
    ("train", ["--resume", "{bad}/empty.npz", "--epochs", "3"], 1, "empty.npz: not a tinysegnet checkpoint \\(empty file\\)"),  # noqa: E501
    ("train", ["--resume", "{bad}/array.npz", "--epochs", "3"], 1, "a single NumPy array"),
    ("train", ["--resume", "{bad}/nometa.npz", "--epochs", "3"], 1, "no metadata"),
    ("train", ["--resume", "{bad}/nonfinite.npz", "--epochs", "3"], 1, "holds non-finite values"),
    ("train", ["--resume", "{bad}/newer.npz", "--epochs", "3"], 1, "format 99 is newer"),
    ("train", ["--resume", "{bad}/norun.npz", "--epochs", "3"], 1, "metadata has no 'run' section"),
    # train: the run folder
    ("train", T + ["--epochs", "1", "--out", "{run}"], 2, "already holds a run .*--overwrite"),
    ("train", T + ["--epochs", "1", "--out", "{bad}/a-file"], 2, "a-file is a file, not a folder"),
    ("train", T + ["--epochs", "1", "--out", "{bad}/a-file/run"], 2, "cannot write there"),
    # train: data
    ("train", ["--data-dir", "{root}/nowhere", "--epochs", "1", "--quiet", "--out", "{root}/n1"], 1, "data folder not found"),  # noqa: E501
    ("train", ["--data-dir", "{set-void}", "--size", "32", "48", "--epochs", "1", "--quiet", "--class-weights", "none",
               "--out", "{root}/n2"], 1, "no labelled pixels"),
    ("train", ["--data-dir", "{set-void}", "--size", "32", "48", "--epochs", "1", "--quiet", "--out", "{root}/n3"], 1,
     "no labelled pixels"),
    ("train", ["--data-dir", "{set-outside}", "--size", "32", "48", "--epochs", "1", "--quiet", "--out", "{root}/n4"], 1,  # noqa: E501
     r"label value 200 is not a class id \(0..10, void 11\)"),
    ("train", ["--data-dir", "{set-deep}", "--size", "32", "48", "--epochs", "1", "--quiet", "--out", "{root}/n5"], 1,
     "16-bit image"),
    ("train", ["--data-dir", "{set-palette}", "--size", "32", "48", "--epochs", "1", "--quiet", "--out", "{root}/n6"], 1,  # noqa: E501
     "palette label image"),
    ("train", ["--data-dir", "{set-bom}", "--size", "32", "48", "--epochs", "1", "--quiet", "--out", "{root}/n7"], 1,
     "train.txt: starts with a byte-order mark"),
    ("train", ["--data-dir", "{set-latin1}", "--size", "32", "48", "--epochs", "1", "--quiet", "--out", "{root}/n8"], 1,
     "train.txt: not UTF-8"),
    ("train", ["--data-dir", "{set-mismatch}", "--size", "32", "48", "--epochs", "1", "--quiet", "--out", "{root}/n9"], 1,  # noqa: E501
     "label is 48x30 but its image is 48x32"),
    # evaluate
    ("evaluate", ["{best}", "--samples", "-1"], 2, "--samples: must be at least 1"),
    ("evaluate", ["{bad}/missing.npz"], 1, "checkpoint not found"),
    ("evaluate", ["{bad}/empty.npz"], 1, "empty file"),
    ("evaluate", ["{bad}/array.npz"], 1, "a single NumPy array"),
    ("evaluate", ["{bad}/nonfinite.npz"], 1, "non-finite values"),
    ("evaluate", ["{bad}/newer.npz"], 1, "newer than this tinysegnet reads"),
    ("evaluate", ["{best}", "--batch-size", "0"], 2, "--batch-size: must be at least 1"),
    ("evaluate", ["{best}", "--json", "{root}/no/such/scores.json"], 2, "no such folder"),
    ("evaluate", ["{best}", "--json", "{bad}/a"], 2, "is a folder, not a file"),
    ("evaluate", ["{best}", "--size", "10", "10"], 2, "--size is the scoring size of --full-res"),
    ("evaluate", ["{best}", "--data-dir", "{root}/nowhere"], 1, "data folder not found"),
    ("evaluate", ["{best}", "--split", "test"], 1, "list file for split 'test' not found"),
    ("evaluate", ["{best}", "--device", "tpu"], 2, "--device: invalid choice"),
    # predict
    ("predict", ["{best}", "{bad}/missing.png", "--out", "{root}/p1"], 1, "missing.png: no such file"),
    ("predict", ["{best}", "{bad}/a/scene.png", "{bad}/b/scene.png", "--out", "{root}/p2"], 2,
     "would both be written as scene_labels.png"),
    ("predict", ["{best}", "{bad}/x.png", "{bad}/x.jpg", "--out", "{root}/p3"], 2, "would both be written as x_labels.png"),  # noqa: E501
    ("predict", ["{best}", "{bad}/x.png", "--out", "{predicted}"], 2, "x_labels.png already exists.*--overwrite"),
    ("predict", ["{best}", "{bad}/x.png", "--out", "{bad}/a-file"], 2, "is a file, not a folder"),
    ("predict", ["{bad}/empty.npz", "{bad}/x.png", "--out", "{root}/p4"], 1, "empty file"),
    ("predict", ["{best}", "{bad}/deep.png", "--out", "{root}/p5"], 1, "deep.png: 16-bit image"),
    ("predict", ["{best}", "{bad}/a-file", "--out", "{root}/p6"], 1, "a-file: unreadable image"),
    ("predict", ["{best}", "{bad}/x.png", "--out", "{root}/p7", "--samples", "0"], 2,
     "--samples: must be at least 1"),
    # export
    ("export", ["{best}", "{bad}/a-file"], 2, r"OUT must end in .pt .* or .onnx"),
    ("export", ["{best}", "{bad}"], 2, r"OUT must end in .pt .* or .onnx"),
    ("export", ["{best}", "{root}/no/such/out.pt"], 2, "no such folder"),
    ("export", ["{bad}/nonfinite.npz", "{root}/out.pt"], 1, "non-finite values"),
    # bench and experiments
    ("bench", ["model", "--repeat", "0"], 2, "--repeat: must be at least 1"),
    ("bench", ["layers", "--repeat", "x"], 2, "--repeat: not an integer"),
    ("experiments", ["decoders", "--epochs", "0"], 2, "--epochs: must be at least 1"),
    ("experiments", ["decoders", "--epochs", "1", "--report", "{bad}/a-file"], 2, "a-file is a file"),
    ("experiments", ["bayesian", "--samples", "5", "0"], 2, "--samples: must be at least 1"),
    ("experiments", ["bayesian", "--size", "8", "0"], 2, "must be at least 1"),
    ("experiments", ["bayesian", "--epochs", "1", "--runs", "{bad}/a-file"], 2, "a-file is a file"),
]
COMMANDS = {"train": train, "evaluate": evaluate, "predict": predict, "export": export,
            "bench": bench, "experiments": experiments}


@pytest.mark.parametrize("command,argv,code,message", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_one_line_and_nothing_lost(world, capsys, command, argv, code, message):
    if command == "export":
        pytest.importorskip("torch")
    argv = [a.format(**{k: v for k, v in world.items() if isinstance(v, str)}) for a in argv]
    with pytest.raises(SystemExit) as exit_info:
        COMMANDS[command].main(argv)
    said = exit_info.value.code
    err = capsys.readouterr().err
    text = said if isinstance(said, str) else err
    assert (1 if isinstance(said, str) else said) == code, text
    lines = [line for line in text.strip().splitlines() if not line.startswith("usage:")]
    assert len(lines) == 1, text
    import re
    assert re.search(message, lines[0]), lines[0]
    after = _snapshot(world["root"])
    changed = [p for p, digest in world["snapshot"].items() if after.get(p) != digest]
    assert not changed, changed


def test_gpu_asked_for_where_there_is_none(capsys):
    if backend.gpu_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(SystemExit) as e:
        bench.main(["layers", "--device", "gpu"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 1 and "\n" not in err
    assert err.startswith("bench: device 'gpu' requested but the GPU is not usable")


def test_student_copies_never_overwrite(tmp_path, capsys):
    pytest.importorskip("nbformat")
    from tinysegnet import lessons
    lessons.main(["student", str(tmp_path)])
    answer = tmp_path / os.listdir(tmp_path)[0]
    answer.write_text(answer.read_text() + " ")  # the student's work
    before = answer.read_text()
    with pytest.raises(SystemExit) as e:
        lessons.main(["student", str(tmp_path)])
    assert e.value.code == 2 and "already holds" in capsys.readouterr().err
    assert answer.read_text() == before


def test_evaluate_full_res_on_images_of_mixed_sizes(world, tmp_path, capsys):
    """Mixed sizes are named in one line, and --size scores them at one size."""
    mixed = _copy_set(world["set"], str(tmp_path / "mixed"))
    for folder in ("val", "valannot"):
        path = _first(mixed, folder)
        im = Image.open(path)
        im.resize((40, 30), Image.NEAREST).save(path)
    with pytest.raises(SystemExit) as e:
        evaluate.main([world["best"], "--data-dir", mixed, "--full-res"])
    err = capsys.readouterr().err
    assert e.value.code == 1 and "images differ in size" in err and "--size H W" in err
    evaluate.main([world["best"], "--data-dir", mixed, "--full-res", "--size", "32", "48"])
    assert "mIoU" in capsys.readouterr().out


# -- nothing lost, second round: one process per run folder, a full disk is one line ----------

def test_a_second_process_on_a_held_run_folder_is_one_line_naming_the_holder(tmp_path):
    import subprocess
    import sys
    import time
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from tinysegnet.files import hold_folder; "
                               f"hold_folder({str(out)!r}); print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = subprocess.run([sys.executable, "-m", "tinysegnet.train", "--epochs", "1", "--size", "16", "16",
                                 "--out", str(out)], capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip() == (f"train: {os.path.realpath(out)} is in use by process {holder.pid}: "
                                         f"wait for it to finish, or use another folder")
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)  # the killed holder's lock is gone with it
    from tinysegnet.files import hold_folder
    hold_folder(str(out))


def test_a_full_disk_is_one_line_and_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    import errno
    from tinysegnet import cli, files
    target = tmp_path / "scores.json"
    target.write_text("the old scores")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(files.os, "replace", full)
    with pytest.raises(SystemExit) as e:
        cli.run_main("evaluate", lambda: files.write_text(str(target), "new"))
    assert e.value.code == 1
    assert target.read_text() == "the old scores"
    assert os.listdir(tmp_path) == ["scores.json"]


def test_a_folder_where_a_run_writes_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "run" / "metrics.jsonl").mkdir(parents=True)
    with pytest.raises(SystemExit) as e:
        train.main(["--epochs", "1", "--size", "16", "16", "--quiet", "--out", str(tmp_path / "run"),
                    "--overwrite"])
    assert e.value.code == 2 and "metrics.jsonl is a folder where a run writes a file" in capsys.readouterr().err
    assert (tmp_path / "run" / "metrics.jsonl").is_dir()


def test_a_folder_named_like_a_list_file_is_named_so(tmp_path, capsys):
    (tmp_path / "camvid" / "train.txt").mkdir(parents=True)
    with pytest.raises(SystemExit) as e:
        train.main(["--data-dir", str(tmp_path / "camvid"), "--epochs", "1", "--quiet", "--out", str(tmp_path / "r")])
    assert e.value.code == 1 and "a folder where the list file of split 'train' belongs" in capsys.readouterr().err


def test_a_bug_that_raises_oserror_keeps_its_traceback(tmp_path):
    import errno
    from tinysegnet import cli, files

    def bug():
        with files.atomic_path(str(tmp_path / "x.txt")):
            raise OSError(errno.EBADF, "a bad file descriptor of ours")
    with pytest.raises(OSError, match="a bad file descriptor"):
        cli.run_main("train", bug)


def test_temporaries_a_killed_run_left_are_removed_at_the_next_start(tiny_set, tmp_path):
    import subprocess
    import sys
    out = tmp_path / "run"
    out.mkdir()
    (out / ".tmp-abc.npz").write_bytes(b"half a checkpoint")
    result = subprocess.run([sys.executable, "-m", "tinysegnet.train", "--data-dir", tiny_set, "--size", "32", "48",
                             "--batch-size", "3", "--epochs", "1", "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "removed" in result.stdout and ".tmp-abc.npz" in result.stdout
    assert not [n for n in os.listdir(out) if n.startswith(".tmp-")]


@pytest.mark.parametrize("argv", [
    ["evaluate", "{run}/best.npz", "--json", "{run}/best.npz"],
    ["evaluate", "{run}/best.npz", "--json", "{run}/metrics.jsonl"],
    ["export", "{run}/best.npz", "{tmp}/out.json"],
    ["export", "{run}/best.npz", "{run}/best.npz"],
])
def test_an_output_never_lands_on_an_input(world, tmp_path, argv):
    import pathlib
    import subprocess
    import sys
    tiny_run = pathlib.Path(world["run"])
    before = {n: (tiny_run / n).read_bytes() for n in os.listdir(tiny_run) if not n.startswith(".")}
    argv = [a.format(run=tiny_run, tmp=tmp_path) for a in argv]
    result = subprocess.run([sys.executable, "-m", f"tinysegnet.{argv[0]}", *argv[1:]],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert {n: (tiny_run / n).read_bytes() for n in os.listdir(tiny_run) if not n.startswith(".")} == before
