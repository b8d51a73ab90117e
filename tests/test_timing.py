import numpy as np

from tinysegnet.testing import strict_cupy
from tinysegnet.timing import alternating, timeit


def test_timeit_warms_up_then_takes_the_median_of_repeats():
    calls = []
    seconds = timeit(lambda: calls.append(1), warmup=2, repeat=3)
    assert len(calls) == 5 and seconds >= 0


def test_the_clock_waits_for_the_device(stand_in):
    a = stand_in.ones((4, 4), np.float32)
    with strict_cupy.counting() as c:
        timeit(lambda: a @ a, stand_in, warmup=1, repeat=3)
    assert c.syncs == 4  # after the warm-up and after each timed run


def test_alternating_times_each_function_in_turn():
    calls = []
    seconds = alternating([lambda: calls.append("a"), lambda: calls.append("b")], warmup=1, repeat=3)
    assert calls == ["a", "b"] * 4 and len(seconds) == 2 and min(seconds) >= 0


def test_alternating_waits_for_the_device_after_each_run(stand_in):
    a = stand_in.ones((4, 4), np.float32)
    with strict_cupy.counting() as c:
        alternating([lambda: a @ a, lambda: a + a], stand_in, warmup=1, repeat=2)
    assert c.syncs == 1 + 2 * 2  # after the warm-up rounds, then after each timed run
