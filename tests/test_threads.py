import pytest
import threadpoolctl

from tinysegnet import threads
from tinysegnet.functional import batch_split


def _blas_threads():
    return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]


def test_threads_for_rounds_the_free_cores_to_at_least_one():
    assert [threads.threads_for(f, 2) for f in (0.0, 0.4, 1.4, 1.6, 2.0, 5.0)] == [1, 1, 1, 2, 2, 2]


def test_free_cores_subtracts_this_processes_own_time(monkeypatch):
    readings = iter([(100.0, 10.0), (101.9, 10.4), (102.3, 11.4)])  # (machine's CPU s, ours)
    clock = iter([0.0, 1.0, 2.0])
    monkeypatch.setattr(threads, "_cpu_seconds", lambda: next(readings))
    monkeypatch.setattr(threads.time, "monotonic", lambda: next(clock))
    watch = threads.FreeCores()
    watch.cores = 2
    assert watch.read() == pytest.approx(2 - 1.5)  # others took 1.9 - 0.4 core-seconds in a second
    assert watch.read() == pytest.approx(2.0)  # the whole 0.4 s the machine spent was ours


def test_a_count_is_set_inside_and_the_blas_own_comes_back():
    own = _blas_threads()
    cut = batch_split.threads()
    with threads.blas_threads(1) as adjust:
        assert adjust() == 1 and set(_blas_threads()) == {1} and batch_split.threads() == 1
    assert _blas_threads() == own and batch_split.threads() == cut
    with threads.blas_threads(None) as adjust:  # untouched
        assert adjust() is None and _blas_threads() == own


@pytest.mark.skipif(threads._cpu_seconds() is None, reason="reads /proc/stat (Linux)")
def test_auto_leaves_a_busy_core_to_the_process_keeping_it(monkeypatch):
    import multiprocessing
    from tinysegnet.bench.epoch import _spin
    spinner = multiprocessing.Process(target=_spin, daemon=True)
    spinner.start()
    try:
        with threads.blas_threads("auto") as adjust:
            cores = threads.FreeCores().cores
            n = adjust()
            assert n <= max(1, cores - 1) and batch_split.threads() == n
    finally:
        spinner.terminate()
        spinner.join()


def _weights_after_steps(count):
    import numpy as np
    from tinysegnet import engine, models, optim
    model = models.build("segnet-basic").train()
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    rng = np.random.default_rng(0)
    with threads.blas_threads(count) as adjust:
        adjust()
        for _ in range(2):
            x = rng.standard_normal((2, 3, 45, 60)).astype(np.float32)
            engine.train_step(model, optimizer, x, rng.integers(0, 12, (2, 45, 60)))
    return [p.data for p in model.parameters()]


def test_the_thread_count_changes_no_weight():
    # what lets "auto" (train's default) resume bit for bit; OpenBLAS rounded the classifier's
    # dw differently on 1 and 2 threads until it was summed in stretches
    for one, two in zip(_weights_after_steps(1), _weights_after_steps(2)):
        assert one.tobytes() == two.tobytes()
