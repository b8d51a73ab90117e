from tinysegnet import bench


def test_decoder_storage_counts_one_uint8_index_per_pooled_value():
    indices, floats = bench.decoder_storage(360, 480)
    pooled = [(180, 240), (90, 120), (45, 60), (23, 30)]
    assert indices == 64 * sum(h * w for h, w in pooled)
    kept = [(360, 480), (180, 240), (90, 120), (45, 60)]  # encoder maps added back, float32
    assert floats == 4 * 64 * sum(h * w for h, w in kept)


def test_peak_memory_includes_the_convolution_scratch():
    peak = bench.inference_peak_memory("cpu")
    cols = 64 * 7 * (360 + 6) * (480 + 6) * 4  # the row shifts of one 360x480 image
    assert 2 * cols < peak < 2**30
