import os

import pytest

from tinysegnet import engine, experiments


def test_decoders_writes_table_and_plot(tiny_set, tmp_path, capsys):
    experiments.main(["decoders", "--data-dir", tiny_set, "--size", "32", "48", "--epochs", "1",
                      "--batch-size", "3", "--variants", "segnet-basic", "fcn-basic", "bilinear",
                      "--runs", str(tmp_path / "runs"), "--report", str(tmp_path / "docs")])
    table = (tmp_path / "docs" / "decoders.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [r.split("|")[1].strip() for r in rows] == ["segnet-basic", "fcn-basic", "bilinear"]
    storage = {r.split("|")[1].strip(): r.split("|")[3].strip() for r in rows}
    assert storage == {"segnet-basic": "1", "fcn-basic": "11", "bilinear": "0"}
    assert os.path.getsize(tmp_path / "docs" / "decoders.png") > 1000
    assert f"Trained with CamVid from {tiny_set}, train split at 32x48, batch 3," in table


def test_a_diverged_variant_says_why_it_diverged(tiny_set, tmp_path, monkeypatch):
    from tinysegnet import engine
    from tinysegnet.experiments import decoders

    def diverges(model_name, run_dir, args, **overrides):
        raise engine.Diverged("loss is inf at step 2 in epoch 1", None)
    monkeypatch.setattr(decoders, "train_model", diverges)
    experiments.main(["decoders", "--data-dir", tiny_set, "--size", "32", "48", "--epochs", "1",
                      "--variants", "bilinear", "--runs", str(tmp_path / "runs")])
    table = (tmp_path / "runs" / "decoders.md").read_text()
    assert "diverged: loss is inf at step 2 in epoch 1" in table


def test_usage(capsys):
    with pytest.raises(SystemExit) as e:
        experiments.main(["tables"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "no experiment 'tables': choose one of decoders, bayesian, choices" in err
    with pytest.raises(SystemExit) as e:
        experiments.main([])
    assert e.value.code == 2 and "usage" in capsys.readouterr().err


def test_a_diverged_variant_is_reported_not_fatal(tiny_set, tmp_path, monkeypatch):
    def diverge(run, **_):
        raise engine.Diverged("loss is nan at step 3 in epoch 1", None)
    monkeypatch.setattr(engine, "fit", diverge)
    experiments.main(["decoders", "--data-dir", tiny_set, "--size", "32", "48", "--epochs", "1",
                      "--variants", "fcn-basic-no-dim-reduction", "--runs", str(tmp_path / "runs"),
                      "--report", str(tmp_path / "docs")])
    table = (tmp_path / "docs" / "decoders.md").read_text()
    assert "| fcn-basic-no-dim-reduction | 875,403 | 64 | - | - | diverged" in table


def test_choices_measures_weighting_and_batch_norm(tiny_set, tmp_path, capsys):
    import json
    argv = ["choices", "--data-dir", tiny_set, "--size", "32", "48", "--epochs", "1", "--batch-size", "3",
            "--device", "cpu", "--runs", str(tmp_path / "runs"), "--report", str(tmp_path / "docs")]
    experiments.main(argv)
    result = json.loads((tmp_path / "docs" / "choices.json").read_text())
    assert set(result["scores"]) == {"median", "none"}
    for both in result["scores"].values():
        assert set(both) == {"running", "recomputed"} and both["running"] != both["recomputed"]
    assert len(result["weights"]) == 3 and all(len(w) == 11 for w in result["weights"].values())
    assert "| median | recomputed |" in (tmp_path / "docs" / "choices.md").read_text()
    experiments.main(argv)  # both runs reused
    assert capsys.readouterr().out.count("already trained") == 2


def test_an_interrupted_experiment_is_one_line(tiny_set, tmp_path, monkeypatch, capsys):
    def interrupt(run, **_):
        raise engine.Interrupted(str(tmp_path / "runs" / "segnet-basic" / "last.npz"), 3)
    monkeypatch.setattr(engine, "fit", interrupt)
    with pytest.raises(SystemExit) as e:
        experiments.main(["bayesian", "--data-dir", tiny_set, "--size", "32", "48", "--epochs", "4",
                          "--runs", str(tmp_path / "runs"), "--report", str(tmp_path / "docs")])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 130 and "\n" not in err
    assert err.startswith("experiments: interrupted in epoch 3 of segnet-basic;") and "holds epoch 2" in err


def test_lcn_report_from_two_runs(tiny_set, tmp_path, capsys):
    from tinysegnet import train
    from tinysegnet.experiments import lcn
    for norm in ("standardize", "lcn"):
        train.main(["--data-dir", tiny_set, "--size", "32", "48", "--epochs", "2", "--batch-size", "3", "--quiet",
                    "--device", "cpu", "--input-norm", norm, "--out", str(tmp_path / norm)])
    lcn.main(["--runs", str(tmp_path / "standardize"), str(tmp_path / "lcn"), "--report", str(tmp_path / "docs")])
    report = (tmp_path / "docs" / "lcn.md").read_text()
    assert "| standardised | 2 |" in report and "| LCN | 2 |" in report and "Bicyclist" in report
    assert "within the epoch-to-epoch noise" in report or "beyond the epoch-to-epoch noise" in report
    with pytest.raises(SystemExit) as e:  # the runs the other way round: one line
        lcn.main(["--runs", str(tmp_path / "lcn"), str(tmp_path / "standardize"), "--report", str(tmp_path / "d2")])
    assert e.value.code == 2 and "--input-norm lcn, not standardize" in capsys.readouterr().err


@pytest.mark.slow  # three SegNet runs: about 40 s
def test_segnet_report_compares_the_two_networks_at_equal_epochs(tiny_set, tmp_path, capsys):
    from tinysegnet import train
    from tinysegnet.experiments import segnet
    for model, epochs in (("segnet-basic", 3), ("segnet", 2)):
        train.main(["--model", model, "--data-dir", tiny_set, "--size", "32", "48", "--epochs", str(epochs),
                    "--batch-size", "3", "--quiet", "--device", "cpu", "--out", str(tmp_path / model)])
    basic, vgg = str(tmp_path / "segnet-basic"), str(tmp_path / "segnet")
    segnet.main(["--runs", basic, vgg, "--report", str(tmp_path / "docs")])
    report = (tmp_path / "docs" / "segnet_camvid.md").read_text()
    rows = [line.split("|")[1:5] for line in report.splitlines() if line.startswith("| SegNet")]
    assert [[c.strip() for c in r] for r in rows] == [["SegNet-Basic", "1,416,075", "3", rows[0][3].strip()],
                                                      ["SegNet, from scratch", "29,449,355", "2", rows[1][3].strip()]]
    assert "At equal epochs (the first 2, which every run reached)" in report and "Bicyclist" in report
    assert f"CamVid from {tiny_set}, train split at 32x48, batch 3" in report
    with pytest.raises(SystemExit) as e:  # the runs the other way round: one line
        segnet.main(["--runs", vgg, basic, "--report", str(tmp_path / "d2")])
    assert e.value.code == 2 and "holds a segnet run, not segnet-basic" in capsys.readouterr().err
    train.main(["--model", "segnet", "--data-dir", tiny_set, "--size", "32", "48", "--epochs", "1",
                "--batch-size", "2", "--quiet", "--device", "cpu", "--out", str(tmp_path / "batch2")])
    with pytest.raises(SystemExit) as e:  # another protocol: one line, nothing written
        segnet.main(["--runs", basic, str(tmp_path / "batch2"), "--report", str(tmp_path / "d3")])
    assert e.value.code == 2 and "batch size 2" in capsys.readouterr().err and not (tmp_path / "d3").exists()
