import numpy as np
import pytest

from tinysegnet import metrics


def test_confusion_and_scores_by_hand():
    labels = np.array([[0, 0, 1, 1, 2, 9]])
    preds = np.array([[0, 1, 1, 1, 0, 2]])
    conf = metrics.confusion_matrix(preds, labels, 3, ignore_index=9)
    np.testing.assert_array_equal(conf, [[1, 1, 0], [0, 2, 0], [1, 0, 0]])
    s = metrics.scores(conf)
    assert s["G"] == pytest.approx(3 / 5)
    assert s["C"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    # IoU: class 0: 1 / (2 + 2 - 1); class 1: 2 / (2 + 3 - 2); class 2: 0 / 1
    assert s["mIoU"] == pytest.approx((1 / 3 + 2 / 3 + 0) / 3)


def test_absent_class_is_left_out_of_means():
    conf = metrics.confusion_matrix(np.array([0, 0, 1]), np.array([0, 0, 1]), 4)
    s = metrics.scores(conf)
    assert s["C"] == 1 and s["mIoU"] == 1 and np.isnan(s["class_iou"][3])


def test_boundary_of_a_square():
    mask = np.zeros((6, 6), bool)
    mask[1:5, 1:5] = True
    edge = metrics.boundary(mask)
    assert edge.sum() == 12 and not edge[2:4, 2:4].any()


def test_dilate_is_a_disk():
    point = np.zeros((7, 7), bool)
    point[3, 3] = True
    assert metrics.dilate(point, 1.0).sum() == 5
    assert metrics.dilate(point, 1.5).sum() == 9
    assert metrics.dilate(point, 2.0).sum() == 13


def test_boundary_f1_perfect_and_shifted():
    label = np.zeros((100, 100), np.int64)
    label[20:60, 20:60] = 1
    assert metrics.boundary_f1(label, label, 2) == 1.0
    # Diagonal 141 px -> tolerance 1.06 px: a 1-pixel shift still matches everywhere,
    # a 3-pixel shift matches only where the boundaries cross.
    shifted1 = np.roll(label, 1, axis=1)
    assert metrics.boundary_f1(shifted1, label, 2) == 1.0
    shifted3 = np.roll(label, 3, axis=1)
    assert metrics.boundary_f1(shifted3, label, 2) < 0.7


def test_boundary_f1_missing_class_counts_zero():
    label = np.zeros((50, 50), np.int64)
    label[10:30, 10:30] = 1
    prediction = np.zeros_like(label)  # class 1 never predicted
    bf = metrics.boundary_f1(prediction, label, 2)
    # class 0's boundary (around the hole) is missed too: both F1 are 0
    assert bf == 0.0


def test_void_is_ignored_in_boundaries():
    label = np.zeros((40, 40), np.int64)
    label[:, 20:] = 9  # right half void
    prediction = np.zeros_like(label)
    prediction[:, 30:] = 1  # a 'wrong' edge inside the void region
    assert metrics.boundary_f1(prediction, label, 2, ignore_index=9) == 1.0


def test_accumulator_over_images():
    score = metrics.SegmentationScore(2, boundary_f1=True)
    label = np.zeros((1, 20, 20), np.int64)
    label[0, 5:15, 5:15] = 1
    score.update(label, label)
    score.update(np.zeros_like(label), label)
    r = score.result()
    assert r["BF"] == pytest.approx(0.5) and r["G"] == pytest.approx(1 - 100 / 800)
