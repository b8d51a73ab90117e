import pytest

from tinysegnet import bench


def test_decoder_storage_counts_one_uint8_index_per_pooled_value():
    indices, floats = bench.decoder_storage(360, 480)
    pooled = [(180, 240), (90, 120), (45, 60), (23, 30)]
    assert indices == 64 * sum(h * w for h, w in pooled)
    kept = [(360, 480), (180, 240), (90, 120), (45, 60)]  # encoder maps added back, float32
    assert floats == 4 * 64 * sum(h * w for h, w in kept)


def test_peak_memory_includes_the_convolution_scratch_and_stays_in_bounds():
    """The last 7x7 layer at 360x480 holds its input, its output and its padded input (in
    scratch) at once; its tiles go in bands (and the first layer's columns too), so the whole
    stays within 320 MiB, where it peaked at 470 taken whole."""
    peak = bench.inference_peak_memory("cpu")
    maps = 2 * 64 * 360 * 480 * 4  # the layer's input and output, float32
    padded = 64 * 366 * 486 * 4  # its input padded to whole tiles of 30 and the kernel's overhang
    assert maps + padded < peak < 320 * 2**20


def test_monte_carlo_bench_prints_every_sample_count(monkeypatch, capsys):
    monkeypatch.setattr(bench, "MONTE_CARLO_SAMPLES", (1, 3))
    monkeypatch.setattr(bench, "timeit", lambda fn, xp, repeat: (fn(), 0.001)[1])  # ran once, not timed
    bench.main(["monte-carlo", "--device", "cpu", "--repeat", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["size", "dropout", "off", "N=1", "N=3"]
    assert [line.split()[0] for line in lines[2:]] == ["90x120", "360x480"]


def test_dropout_adds_few_launches_to_a_step():
    """Bayesian SegNet-Basic's four dropout layers, forward and backward, through the stand-in."""
    plain = bench.count_launches("segnet-basic", 2, 32, 48)
    bayes = bench.count_launches("bayesian-segnet-basic", 2, 32, 48)
    assert bayes[1] == plain[1] == 1  # still one sync a step
    assert 0 < bayes[0] - plain[0] <= 4 * 8 and bayes[2] == plain[2]  # inference: dropout off
    assert plain[3] == 3 and bayes[3] is None  # a replayed graph; dropout is not graphed


def test_bench_epoch_times_both_through_the_same_loop(capsys):
    pytest.importorskip("torch")
    from tinysegnet.bench import epoch
    result = epoch.report(train_images=3, val_images=2, repeat=1)
    assert set(result) == {"ours", "torch"} and all(result[w]["train"] > 0 for w in result)
    out = capsys.readouterr().out
    assert "3 train + 2 val images" in out and "ratio" in out


def test_the_load_ends_quietly(capfd):
    """The processes that keep a core busy are forked from a command that turns SIGTERM into
    KeyboardInterrupt: terminated, they end without a traceback in the user's output."""
    bench.main(["epoch", "--load", "1", "--images", "2", "1", "--repeat", "1"])
    out, err = capfd.readouterr()
    assert "1 other process(es) keeping a core busy" in out
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err


def test_the_conv_methods_table_has_a_column_per_method(monkeypatch, capsys):
    import numpy as np
    monkeypatch.setattr(bench, "METHOD_SHAPES", [(2, 3, 9, 8, 4, 7), (2, 4, 9, 8, 4, 3), (1, 16, 60, 60, 4, 7)])
    monkeypatch.setattr(bench, "timeit", lambda fn, xp, repeat: (fn(), 0.001)[1])  # ran once, not timed
    bench.compare_conv_methods(np, 1)
    header, seven, three, large = capsys.readouterr().out.splitlines()
    assert header.split()[-15:] == ["rowshift", "ms", "im2col", "ms", "fft", "ms", "fft-tiles", "ms",
                                    "winograd", "ms", "winograd4", "ms", "pointwise", "ms", "chosen"]
    assert seven.split()[-8:] == ["1.0", "1.0", "1.0", "1.0", "-", "-", "-", "im2col"]  # Winograd: 3x3 only
    assert three.split()[-8:] == ["1.0", "1.0", "-", "1.0", "1.0", "1.0", "-", "im2col"]
    assert large.split()[-8:] == ["1.0", "1.0", "-", "1.0", "-", "-", "-", "fft-tiles"]  # whole-map transforms too long


def test_bench_model_times_ours_and_torch_in_turn(monkeypatch, capsys):
    """One alternation per row holds our step and inference and PyTorch's, so that the
    machine's drift falls on both sides of the ratio."""
    pytest.importorskip("torch")
    monkeypatch.setattr(bench, "MODEL_ROWS", {"cpu": [("segnet-basic", 1, 16, 24)]})
    monkeypatch.setattr(bench, "inference_peak_memory", lambda device: 0)
    rounds = []

    def fake_alternating(fns, xp, warmup, repeat):
        rounds.append(len(fns))
        for fn in fns:
            fn()
        return [0.004, 0.002, 0.008, 0.001]

    monkeypatch.setattr(bench, "alternating", fake_alternating)
    bench.bench_model("cpu", 1, vs_torch=True)
    row = capsys.readouterr().out.splitlines()[2].split()
    assert rounds == [4]  # ours: step, inference; PyTorch's: step, inference
    assert row[-2:] == ["0.50", "2.00"]  # our times over PyTorch's, training then inference


def test_bench_model_on_a_gpu_times_the_graphed_step_in_the_same_turns(monkeypatch, capsys, stand_in):
    monkeypatch.setattr(bench, "MODEL_ROWS", {"gpu": [("segnet-basic", 1, 16, 24)]})
    monkeypatch.setattr(bench, "gpu_memory_ours", lambda *args: 0)
    rounds = []

    def fake_alternating(fns, xp, warmup, repeat):
        rounds.append(len(fns))
        for _ in range(2):  # the graphed step records on its second call
            for fn in fns:
                fn()
        return [0.004, 0.002, 0.001]

    monkeypatch.setattr(bench, "alternating", fake_alternating)
    bench.bench_model("gpu", 1, vs_torch=False)
    row = capsys.readouterr().out.splitlines()[2].split()
    assert rounds == [3]  # the eager step, inference, the graphed step
    assert row[3:] == ["4.0", "4.0", "2.0", "2.0", "1.0"]
