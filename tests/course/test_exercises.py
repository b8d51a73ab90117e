"""The exercise checks catch wrong answers: for every exercise, the lessons' own solution
passes its check and each answer of a catalogue of plausible mistakes fails it."""

import numpy as np
import pytest

from tinysegnet import functional as F
from tinysegnet import metrics
from tinysegnet.course import capstone, checks
from tinysegnet.functional.dropout import DropoutCache
from tinysegnet.metrics import boundary, dilate

nbformat = pytest.importorskip("nbformat")

from tinysegnet import lessons  # noqa: E402


def _solutions():
    """{exercise: namespace after running its solution cell} from the lesson notebooks."""
    found = {}
    for path in lessons.lesson_paths():
        for cell in nbformat.read(path, as_version=4).cells:
            if "solution" in cell.metadata.get("tags", []):
                namespace = {"np": np}
                exec(cell.source, namespace)
                found[cell.metadata["exercise"]] = namespace
    return found


SOLUTIONS = _solutions()


def _pad(x, p):
    return np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))


# -- 2.1 conv_forward -------------------------------------------------------------------------

def conv_forward_pad_one(x, w, b):  # padding fixed at 1: right only for k = 3
    N, C, H, W = x.shape
    k = w.shape[2]
    xpad = _pad(x, 1)
    Ho, Wo = H + 2 - k + 1, W + 2 - k + 1
    out = np.zeros((N, w.shape[0], Ho, Wo))
    for u in range(k):
        for v in range(k):
            out += np.einsum("fc,nchw->nfhw", w[:, :, u, v], xpad[:, :, u:u + Ho, v:v + Wo])
    return out + b[None, :, None, None]


def conv_forward_flipped(x, w, b):  # a true convolution: the kernel flipped
    return SOLUTIONS["2.1"]["conv_forward"](x, w[:, :, ::-1, ::-1], b)


def conv_forward_no_bias(x, w, b):
    return SOLUTIONS["2.1"]["conv_forward"](x, w, np.zeros_like(b))


def conv_forward_square_loops(x, w, b):  # the column loop bounded by the height
    N, C, H, W = x.shape
    k = w.shape[2]
    p = (k - 1) // 2
    xpad = _pad(x, p)
    out = np.zeros((N, w.shape[0], H, W)) + b[None, :, None, None]
    for i in range(H):
        for j in range(min(H, W)):
            out[:, :, i, j] += np.einsum("fcuv,ncuv->nf", w, xpad[:, :, i:i + k, j:j + k])
    return out


def conv_forward_library(x, w, b):
    return F.conv2d_forward(x, w, b)[0]


# -- 2.2 conv_dw ------------------------------------------------------------------------------

def conv_dw_first_image(xpad, dout, k):  # the batch sum forgotten
    return SOLUTIONS["2.2"]["conv_dw"](xpad[:1], dout[:1], k)


def conv_dw_channels_swapped(xpad, dout, k):
    dw = np.zeros((xpad.shape[1], dout.shape[1], k, k))
    Ho, Wo = dout.shape[2:]
    for u in range(k):
        for v in range(k):
            dw[:, :, u, v] = np.einsum("nfhw,nchw->cf", dout, xpad[:, :, u:u + Ho, v:v + Wo])
    return dw


def conv_dw_square_loops(xpad, dout, k):
    N, F_, Ho, Wo = dout.shape
    dw = np.zeros((F_, xpad.shape[1], k, k))
    for n in range(N):
        for i in range(Ho):
            for j in range(min(Ho, Wo)):
                dw += dout[n, :, i, j][:, None, None, None] * xpad[n, :, i:i + k, j:j + k]
    return dw


def conv_dw_library(xpad, dout, k):
    p = (k - 1) // 2
    x = xpad[:, :, p:xpad.shape[2] - p, p:xpad.shape[3] - p]
    _, cache = F.conv2d_forward(x, np.zeros((dout.shape[1], x.shape[1], k, k)))
    return F.conv2d_backward(dout, cache)[1]


# -- 2.3 conv_dx ------------------------------------------------------------------------------

def conv_dx_not_flipped(dout, w):  # correlates dout with w instead of scattering
    k = w.shape[2]
    p = (k - 1) // 2
    H, W = dout.shape[2:]
    gpad = _pad(dout, p)
    dx = np.zeros((dout.shape[0], w.shape[1], H, W))
    for u in range(k):
        for v in range(k):
            dx += np.einsum("fc,nfhw->nchw", w[:, :, u, v], gpad[:, :, u:u + H, v:v + W])
    return dx


def conv_dx_cropped_at_the_corner(dout, w):
    k = w.shape[2]
    p = (k - 1) // 2
    N, F_, H, W = dout.shape
    dxpad = np.zeros((N, w.shape[1], H + 2 * p, W + 2 * p))
    for u in range(k):
        for v in range(k):
            dxpad[:, :, u:u + H, v:v + W] += np.einsum("fc,nfhw->nchw", w[:, :, u, v], dout)
    return dxpad[:, :, :H, :W]


def conv_dx_pad_one(dout, w):
    N, F_, H, W = dout.shape
    k = w.shape[2]
    dxpad = np.zeros((N, w.shape[1], H + 2, W + 2))
    for u in range(min(k, 3)):
        for v in range(min(k, 3)):
            dxpad[:, :, u:u + H, v:v + W] += np.einsum("fc,nfhw->nchw", w[:, :, u, v], dout)
    return dxpad[:, :, 1:1 + H, 1:1 + W]


def conv_dx_library(dout, w):
    x = np.zeros((dout.shape[0], w.shape[1]) + dout.shape[2:])
    return F.conv2d_backward(dout, F.conv2d_forward(x, w)[1])[0]


# -- 3.1 bn_dx, 3.2 bn_dparams ----------------------------------------------------------------

def _sums(a):
    return a.sum(axis=(0, 2, 3), keepdims=True)


def bn_dx_no_xhat_term(dout, xhat, gamma, inv_std):
    m = dout.size // dout.shape[1]
    g = dout * gamma[None, :, None, None]
    return (m * g - _sums(g)) * inv_std[None, :, None, None] / m


def bn_dx_unbiased(dout, xhat, gamma, inv_std):
    m = dout.size // dout.shape[1]
    g = dout * gamma[None, :, None, None]
    return (m * g - _sums(g) - xhat * _sums(g * xhat)) * inv_std[None, :, None, None] / (m - 1)


def bn_dx_no_gamma(dout, xhat, gamma, inv_std):
    return SOLUTIONS["3.1"]["bn_dx"](dout, xhat, np.ones_like(gamma), inv_std)


def bn_dx_inference_mode(dout, xhat, gamma, inv_std):  # only the direct path
    return dout * (gamma * inv_std)[None, :, None, None]


def bn_dparams_swapped(dout, xhat):
    return dout.sum(axis=(0, 2, 3)), (dout * xhat).sum(axis=(0, 2, 3))


def bn_dparams_batch_axis_only(dout, xhat):
    return (dout * xhat).sum(axis=0), dout.sum(axis=0)


def bn_dparams_means(dout, xhat):
    return (dout * xhat).mean(axis=(0, 2, 3)), dout.mean(axis=(0, 2, 3))


# -- 4.1 - 4.4 pooling and unpooling ----------------------------------------------------------

def _windows(x, fill):
    N, C, H, W = x.shape
    Ho, Wo = (H + 1) // 2, (W + 1) // 2
    xpad = np.full((N, C, 2 * Ho, 2 * Wo), fill)
    xpad[:, :, :H, :W] = x
    return np.stack([xpad[:, :, di::2, dj::2] for di in (0, 1) for dj in (0, 1)])


def maxpool_floor_mode(x):
    H, W = x.shape[2:]
    windows = _windows(x[:, :, :H // 2 * 2, :W // 2 * 2], -np.inf)
    return windows.max(axis=0), windows.argmax(axis=0)


def maxpool_ties_to_the_last(x):
    windows = _windows(x, -np.inf)
    return windows.max(axis=0), 3 - windows[::-1].argmax(axis=0)


def maxpool_column_major_indices(x):
    windows = _windows(x, -np.inf)
    index = windows.argmax(axis=0)
    return windows.max(axis=0), (index % 2) * 2 + index // 2


def maxpool_zero_padding(x):  # pads with 0: a negative border window "wins" the padding
    windows = _windows(x, 0.0)
    return windows.max(axis=0), windows.argmax(axis=0)


def maxpool_dx_no_crop(dout, indices, input_shape):
    N, C, Ho, Wo = dout.shape
    dx = np.zeros((N, C, 2 * Ho, 2 * Wo))
    for k in range(4):
        dx[:, :, k // 2::2, k % 2::2] = np.where(indices == k, dout, 0)
    return dx


def maxpool_dx_offsets_swapped(dout, indices, input_shape):
    N, C, Ho, Wo = dout.shape
    dx = np.zeros((N, C, 2 * Ho, 2 * Wo))
    for k in range(4):
        dx[:, :, k % 2::2, k // 2::2] = np.where(indices == k, dout, 0)
    return dx[:, :, :input_shape[2], :input_shape[3]]


def maxpool_dx_everywhere(dout, indices, input_shape):  # no indices: the gradient spread
    N, C, Ho, Wo = dout.shape
    dx = np.zeros((N, C, 2 * Ho, 2 * Wo))
    for k in range(4):
        dx[:, :, k // 2::2, k % 2::2] = dout
    return dx[:, :, :input_shape[2], :input_shape[3]]


def maxpool_dx_library(dout, indices, input_shape):
    return F.maxpool2x2_backward(dout, indices, input_shape)


def unpool_nearest(values, indices, size):  # copies every value into its whole window
    N, C, Ho, Wo = values.shape
    out = np.zeros((N, C, 2 * Ho, 2 * Wo))
    for k in range(4):
        out[:, :, k // 2::2, k % 2::2] = values
    return out[:, :, :size[0], :size[1]]


def unpool_offsets_swapped(values, indices, size):
    N, C, Ho, Wo = values.shape
    out = np.zeros((N, C, 2 * Ho, 2 * Wo))
    for k in range(4):
        out[:, :, k % 2::2, k // 2::2] = np.where(indices == k, values, 0)
    return out[:, :, :size[0], :size[1]]


def unpool_no_crop(values, indices, size):
    N, C, Ho, Wo = values.shape
    out = np.zeros((N, C, 2 * Ho, 2 * Wo))
    for k in range(4):
        out[:, :, k // 2::2, k % 2::2] = np.where(indices == k, values, 0)
    return out


def unpool_library(values, indices, size):
    return F.unpool2x2_forward(values, indices, size)


def _full(dout, indices):
    N, C, Ho, Wo = indices.shape
    full = np.zeros((N, C, 2 * Ho, 2 * Wo))
    full[:, :, :dout.shape[2], :dout.shape[3]] = dout
    return full


def unpool_dvalues_window_sum(dout, indices):
    full = _full(dout, indices)
    return sum(full[:, :, k // 2::2, k % 2::2] for k in range(4))


def unpool_dvalues_offsets_swapped(dout, indices):
    full = _full(dout, indices)
    return sum(np.where(indices == k, full[:, :, k % 2::2, k // 2::2], 0) for k in range(4))


def unpool_dvalues_window_max(dout, indices):
    full = _full(dout, indices)
    return np.max([full[:, :, k // 2::2, k % 2::2] for k in range(4)], axis=0)


# -- 5.1 ce_grad, 5.2 median_frequency --------------------------------------------------------

def _softmax(z, shift=True):
    e = np.exp(z - z.max(axis=1, keepdims=True)) if shift else np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _ce(logits, labels, weights, ignore, shift=True, void_mask=True, normaliser="valid"):
    valid = labels != ignore
    target = np.where(valid, labels, 0)
    onehot = np.arange(logits.shape[1])[None, :, None, None] == target[:, None]
    with np.errstate(over="ignore", invalid="ignore"):
        p = _softmax(logits, shift)
    pixel = weights[target] * (valid if void_mask else 1)
    total = {"valid": valid.sum(), "all": labels.size, "weights": (weights[target] * valid).sum()}[normaliser]
    return (p - onehot) * (pixel / total)[:, None]


def ce_grad_no_shift(logits, labels, weights, ignore):
    return _ce(logits, labels, weights, ignore, shift=False)


def ce_grad_over_all_pixels(logits, labels, weights, ignore):
    return _ce(logits, labels, weights, ignore, normaliser="all")


def ce_grad_void_not_masked(logits, labels, weights, ignore):
    return _ce(logits, labels, weights, ignore, void_mask=False)


def ce_grad_pytorch_normalisation(logits, labels, weights, ignore):
    return _ce(logits, labels, weights, ignore, normaliser="weights")


def ce_grad_library(logits, labels, weights, ignore):
    return F.softmax_cross_entropy(logits, labels, weights, ignore)[1]


def _counts(labels, n_classes, ignore):
    per_image = [np.bincount(im[im != ignore], minlength=n_classes)[:n_classes] for im in labels]
    return np.array(per_image), np.array([(im != ignore).sum() for im in labels])


def _balanced(freq, center=np.median, absent_in_center=False):
    seen = freq > 0
    return np.where(seen, center(freq if absent_in_center else freq[seen]) / np.where(seen, freq, 1), 0)


def _per_image_frequency(counts, sizes):
    totals = ((counts > 0) * sizes[:, None]).sum(0)
    return np.where(totals > 0, counts.sum(0) / np.maximum(totals, 1), 0)


def median_frequency_global(labels, n_classes, ignore):  # pixels of c / all valid pixels
    counts, sizes = _counts(labels, n_classes, ignore)
    return _balanced(counts.sum(0) / sizes.sum())


def median_frequency_void_counted(labels, n_classes, ignore):
    counts, _ = _counts(labels, n_classes, ignore)
    return _balanced(_per_image_frequency(counts, np.array([im.size for im in labels])))


def median_frequency_mean(labels, n_classes, ignore):
    return _balanced(_per_image_frequency(*_counts(labels, n_classes, ignore)), center=np.mean)


def median_frequency_absent_in_median(labels, n_classes, ignore):
    return _balanced(_per_image_frequency(*_counts(labels, n_classes, ignore)), absent_in_center=True)


# -- 8.1 - 8.3 metrics ------------------------------------------------------------------------

def confusion_transposed(predictions, labels, n_classes, ignore):
    return SOLUTIONS["8.1"]["confusion"](predictions, labels, n_classes, ignore).T


def confusion_void_kept(predictions, labels, n_classes, ignore):
    keep = labels < n_classes
    index = np.minimum(labels, n_classes - 1) * n_classes + predictions
    return np.bincount(index.ravel(), minlength=n_classes ** 2).reshape(n_classes, n_classes) + 0 * keep.sum()


def confusion_diagonal_only(predictions, labels, n_classes, ignore):
    valid = labels != ignore
    hits = np.bincount(labels[valid & (labels == predictions)], minlength=n_classes)[:n_classes]
    return np.diag(hits)


def _rates(conf):
    conf = conf.astype(float)
    hits, true, pred = np.diag(conf), conf.sum(1), conf.sum(0)
    return hits, true, pred


def scores_absent_as_zero(conf):
    hits, true, pred = _rates(conf)
    acc = np.where(true > 0, hits / np.maximum(true, 1), 0)
    iou = np.where(true > 0, hits / np.maximum(true + pred - hits, 1), 0)
    return hits.sum() / conf.sum(), acc.mean(), iou.mean()


def scores_union_double_counts(conf):
    hits, true, pred = _rates(conf)
    seen = true > 0
    return hits.sum() / conf.sum(), np.mean(hits[seen] / true[seen]), np.mean(hits[seen] / (true + pred)[seen])


def scores_g_as_class_mean(conf):
    hits, true, pred = _rates(conf)
    seen = true > 0
    C = np.mean(hits[seen] / true[seen])
    return C, C, np.mean(hits[seen] / (true + pred - hits)[seen])


def scores_iou_over_predicted(conf):  # absent classes chosen by the prediction's column
    hits, true, pred = _rates(conf)
    seen = pred > 0
    return (hits.sum() / conf.sum(), np.mean(hits[true > 0] / true[true > 0]),
            np.mean(hits[seen] / (true + pred - hits)[seen]))


def _bf(prediction, label, n_classes, ignore, radius=None, dilation=True, void=True, absent=False):
    valid = label != ignore if void else np.ones(label.shape, bool)
    radius = 0.0075 * np.hypot(*label.shape) if radius is None else radius
    f1s = []
    for c in range(n_classes):
        t, p = (label == c) & valid, (prediction == c) & valid
        if not t.any() and not p.any():
            if absent:
                f1s.append(0.0)
            continue
        te, pe = boundary(t), boundary(p)
        if not te.any() or not pe.any():
            f1s.append(0.0)
            continue
        near_t = dilate(te, radius) if dilation else te
        near_p = dilate(pe, radius) if dilation else pe
        precision, recall = (pe & near_t).sum() / pe.sum(), (te & near_p).sum() / te.sum()
        f1s.append(0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall))
    return float(np.mean(f1s))


def bf_tolerance_from_height(prediction, label, n_classes, ignore):
    return _bf(prediction, label, n_classes, ignore, radius=0.0075 * label.shape[0])


def bf_exact_matching(prediction, label, n_classes, ignore):
    return _bf(prediction, label, n_classes, ignore, dilation=False)


def bf_void_kept(prediction, label, n_classes, ignore):
    return _bf(prediction, label, n_classes, ignore, void=False)


def bf_absent_classes_count(prediction, label, n_classes, ignore):
    return _bf(prediction, label, n_classes, ignore, absent=True)


def bf_library(prediction, label, n_classes, ignore):
    return metrics.boundary_f1(prediction, label, n_classes, ignore)


# -- 10.1 transposed convolution --------------------------------------------------------------

def _tconv_back(dout, x, w, stride=2, pad=1, swap_dw=False):
    N, C, H, W = x.shape
    k = w.shape[2]
    full = np.zeros((N, w.shape[1], stride * (H - 1) + k, stride * (W - 1) + k))
    Ho, Wo = dout.shape[2:]
    full[:, :, pad:pad + Ho, pad:pad + Wo] = dout[:, :, :full.shape[2] - pad, :full.shape[3] - pad]
    dx, dw = np.zeros_like(x), np.zeros_like(w)
    for u in range(k):
        for v in range(k):
            g = full[:, :, u:u + stride * H:stride, v:v + stride * W:stride]
            dx += np.einsum("cf,nfhw->nchw", w[:, :, u, v], g)
            dw[:, :, u, v] = np.einsum("nchw,nfhw->cf", x, g)
    return dx, (dw.transpose(1, 0, 2, 3) if swap_dw else dw)


def tconv_dw_axes_swapped(dout, x, w):
    return _tconv_back(dout, x, w, swap_dw=True)


def tconv_no_padding_offset(dout, x, w):
    return _tconv_back(dout, x, w, pad=0)


def tconv_stride_one(dout, x, w):
    N, C, H, W = x.shape
    dx, dw = np.zeros_like(x), np.zeros_like(w)
    for u in range(4):
        for v in range(4):
            g = _pad(dout, 2)[:, :, u:u + H, v:v + W]
            dx += np.einsum("cf,nfhw->nchw", w[:, :, u, v], g)
            dw[:, :, u, v] = np.einsum("nchw,nfhw->cf", x, g)
    return dx, dw


def tconv_library(dout, x, w):
    return F.conv_transpose2d_backward(dout, F.conv_transpose2d_forward(x, w, dout.shape[2:])[1])


# -- 11.1 dropout -----------------------------------------------------------------------------

def _drop_pair(scale, keep_low=False, backward_mask=True):
    def forward(x, p, u):
        keep = u < p if keep_low else u >= p
        return np.where(keep, x * scale(p), 0.0), keep

    def backward(dout, keep, p):
        return np.where(keep, dout * scale(p), 0.0) if backward_mask else dout * scale(p)
    return forward, backward


DROPOUT_WRONG = {
    "no scaling": _drop_pair(lambda p: 1.0),
    "scaled by 1 - p": _drop_pair(lambda p: 1 - p),
    "keeps where u < p": _drop_pair(lambda p: 1 / (1 - p), keep_low=True),
    "backward ignores the mask": _drop_pair(lambda p: 1 / (1 - p), backward_mask=False),
    "the library": (lambda x, p, u: F.dropout_forward(x, p, True, checks._Given(u)),
                    lambda dout, keep, p: F.dropout_backward(dout, DropoutCache(keep, 1 / (1 - p)))),
}


# -- the families the held-out catalogue found passing -------------------------------------------

_BUFFER = {}


def conv_forward_reused_buffer(x, w, b):  # one output array handed back on every call
    out = SOLUTIONS["2.1"]["conv_forward"](x, w, b)
    buffer = _BUFFER.setdefault(out.shape, np.empty(out.shape))
    buffer[...] = out
    return buffer


def conv_forward_float32(x, w, b):
    return SOLUTIONS["2.1"]["conv_forward"](x.astype(np.float32), w.astype(np.float32), b.astype(np.float32))


def conv_forward_pads_in_place(x, w, b):  # right values, but x is overwritten with them
    out = SOLUTIONS["2.1"]["conv_forward"](x, w, b)
    x[...] = 0
    return out


def conv_dw_float32(xpad, dout, k):
    return SOLUTIONS["2.2"]["conv_dw"](xpad.astype(np.float32), dout.astype(np.float32), k)


def bn_dx_float32(dout, xhat, gamma, inv_std):
    return SOLUTIONS["3.1"]["bn_dx"](*(a.astype(np.float32) for a in (dout, xhat, gamma, inv_std)))


def bn_dx_scales_dout_in_place(dout, xhat, gamma, inv_std):
    dx = SOLUTIONS["3.1"]["bn_dx"](dout, xhat, gamma, inv_std)
    dout *= gamma[None, :, None, None]
    return dx


def maxpool_writes_padding_into_x(x):
    out = SOLUTIONS["4.1"]["maxpool_forward"](x)
    x[:, :, -1, -1] = -np.inf
    return out


def unpool_scales_values_in_place(values, indices, size):
    out = SOLUTIONS["4.3"]["unpool_forward"](values, indices, size)
    values *= 0
    return out


def ce_grad_void_by_bincount(logits, labels, weights, ignore):  # no void pixel: an IndexError
    n_valid = labels.size - np.bincount(labels.ravel())[ignore]
    return _ce(logits, labels, weights, ignore) * 0 + _ce(logits, labels, weights, ignore) * (
        (labels != ignore).sum() / n_valid)


def ce_grad_float32(logits, labels, weights, ignore):
    return SOLUTIONS["5.1"]["ce_grad"](logits.astype(np.float32), labels, weights.astype(np.float32), ignore)


def ce_grad_shifts_logits_in_place(logits, labels, weights, ignore):
    logits -= logits.max(axis=1, keepdims=True)
    return SOLUTIONS["5.1"]["ce_grad"](logits, labels, weights, ignore)


def median_frequency_upper_median(labels, n_classes, ignore):  # right for an odd count only
    return _balanced(_per_image_frequency(*_counts(labels, n_classes, ignore)),
                     center=lambda f: np.sort(f)[len(f) // 2])


def median_frequency_float32(labels, n_classes, ignore):
    return SOLUTIONS["5.2"]["median_frequency"](labels, n_classes, ignore).astype(np.float32)


def median_frequency_relabels_void_in_place(labels, n_classes, ignore):
    weights = SOLUTIONS["5.2"]["median_frequency"](labels, n_classes, ignore)
    labels[labels == ignore] = n_classes
    return weights


def confusion_clears_void_in_place(predictions, labels, n_classes, ignore):
    conf = SOLUTIONS["8.1"]["confusion"](predictions, labels, n_classes, ignore)
    predictions[labels == ignore] = 0
    return conf


def scores_absent_from_both_perfect(conf):  # a class nobody saw or predicted scores 1
    hits, true, pred = _rates(conf)
    union = true + pred - hits
    acc = np.where(true > 0, hits / np.maximum(true, 1), np.where(pred > 0, np.nan, 1.0))
    iou = np.where(union > 0, hits / np.maximum(union, 1), 1.0)
    seen = (true > 0) | (union == 0)
    return hits.sum() / conf.sum(), np.nanmean(acc), iou[seen].mean()


def bf_tolerance_rounded(prediction, label, n_classes, ignore):  # 1.5 px taken as 1
    return _bf(prediction, label, n_classes, ignore, radius=np.floor(0.0075 * np.hypot(*label.shape)))


def bf_tolerance_from_longer_side(prediction, label, n_classes, ignore):
    return _bf(prediction, label, n_classes, ignore, radius=0.0075 * max(label.shape))


def bf_denominators_swapped(prediction, label, n_classes, ignore):
    valid = label != ignore
    radius = 0.0075 * np.hypot(*label.shape)
    f1s = []
    for c in range(n_classes):
        t, p = (label == c) & valid, (prediction == c) & valid
        if not t.any() and not p.any():
            continue
        te, pe = boundary(t), boundary(p)
        if not te.any() or not pe.any():
            f1s.append(0.0)
            continue
        precision, recall = (pe & dilate(te, radius)).sum() / te.sum(), (te & dilate(pe, radius)).sum() / pe.sum()
        f1s.append(0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall))
    return float(np.mean(f1s))


def bf_empty_both_perfect(prediction, label, n_classes, ignore):  # no boundary in either: 1.0
    valid = label != ignore
    if not any(boundary((label == c) & valid).any() or boundary((prediction == c) & valid).any()
               for c in range(n_classes)):
        return 1.0
    return SOLUTIONS["8.3"]["bf_score"](prediction, label, n_classes, ignore)


def _mask_from_output(x, p, u):  # the mask read back from the output: wrong where x is 0
    out = np.where(u >= p, x / (1 - p), 0.0)
    return out, out != 0


def _dropout_backward_in_place(dout, keep, p):
    dout[~keep] = 0
    dout /= 1 - p
    return dout.copy()


DROPOUT_EXTRA = {
    "the mask taken as out != 0": (_mask_from_output, lambda dout, keep, p: np.where(keep, dout / (1 - p), 0.0)),
    "backward writes into dout": (lambda x, p, u: (np.where(u >= p, x / (1 - p), 0.0), u >= p),
                                  _dropout_backward_in_place),
}


# -- 13.1, 13.2 Winograd's minimal filtering ---------------------------------------------------

_BT = np.array([[1.0, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]])
_G = np.array([[1.0, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
_AT = np.array([[1.0, 1, 1, 0], [0, 1, -1, -1]])


def _f23(d, g, G=_G, BT=_BT):
    U, V = G @ g, d @ BT.T
    return U, V, (U * V) @ _AT.T


def f23_without_the_half(d, g):  # the factor left out of the filter's transform
    return _f23(d, g, G=np.array([[1.0, 0, 0], [1, 1, 1], [1, -1, 1], [0, 0, 1]]))


def f23_convolution(d, g):  # the filter flipped: convolution, not correlation
    return _f23(d, g[::-1])


def f23_half_in_the_tiles(d, g):  # the 1/2 moved into V: y right, the transforms not the lesson's
    U, V, y = _f23(d, g, G=np.array([[1.0, 0, 0], [1, 1, 1], [1, -1, 1], [0, 0, 1]]))
    return U, V * np.array([1, 0.5, 0.5, 1]), y


def f23_minus_sign_swapped(d, g):  # m3 from d1 - d2, its sign then wrong in y
    U, V, _ = _f23(d, g, BT=np.array([[1.0, 0, -1, 0], [0, 1, 1, 0], [0, 1, -1, 0], [0, 1, 0, -1]]))
    m = U * V
    return U, V, np.stack([m[:, 0] + m[:, 1] + m[:, 2], m[:, 1] - m[:, 2] - m[:, 3]], axis=1)


def f23_tiles_as_columns(d, g):  # V transposed, (4, T)
    U, V, y = _f23(d, g)
    return U, V.T, y


def f22_33_one_side(d, g):  # only the rows transformed
    U, V = _G @ g @ _G.T, _BT @ d
    return U, V, _AT @ (U * (_BT @ d @ _BT.T)) @ _AT.T


def f22_33_filter_transposed(d, g):  # g's axes swapped: right only for symmetric filters
    U, V = _G @ g.T @ _G.T, _BT @ d @ _BT.T
    return U, V, _AT @ (U * V) @ _AT.T


def f22_33_convolution(d, g):  # the filter flipped in both axes
    U, V = _G @ g[::-1, ::-1] @ _G.T, _BT @ d @ _BT.T
    return U, V, _AT @ (U * V) @ _AT.T


def f22_33_rows_only_output(d, g):  # A applied on one side only, then the first column kept
    U, V = _G @ g @ _G.T, _BT @ d @ _BT.T
    return U, V, (_AT @ (U * V))[:, :, :2]


def _writes_into(exercise, name, position):
    """The lesson's right answer that then writes into its input number ``position``."""
    def answer(*args):
        result = SOLUTIONS[exercise][name](*args)
        target = args[position]
        target.flat[0] = target.flat[-1] if target.flat[0] != target.flat[-1] else target.flat[0] + 1
        return result
    answer.__name__ = f"{name}_writes_into_input_{position}"
    return answer


def _in_float32(exercise, name):
    """The lesson's right answer computed on float32 copies of its float inputs."""
    def answer(*args):
        return SOLUTIONS[exercise][name](*(a.astype(np.float32) if isinstance(a, np.ndarray) and a.dtype.kind == "f"
                                           else a for a in args))
    answer.__name__ = f"{name}_in_float32"
    return answer


MORE_WRONG = {
    "2.3": [_writes_into("2.3", "conv_dx", 0), _in_float32("2.3", "conv_dx")],
    "3.2": [_writes_into("3.2", "bn_dparams", 1), _in_float32("3.2", "bn_dparams")],
    "4.2": [_writes_into("4.2", "maxpool_dx", 0)],
    "4.4": [_writes_into("4.4", "unpool_dvalues", 0)],
    "8.2": [_writes_into("8.2", "scores_from", 0)],
    "8.3": [_writes_into("8.3", "bf_score", 1)],
    "10.1": [_writes_into("10.1", "conv_transpose_backward", 1), _in_float32("10.1", "conv_transpose_backward")],
    "13.1": [_writes_into("13.1", "winograd_f23", 0), _in_float32("13.1", "winograd_f23")],
    "13.2": [_writes_into("13.2", "winograd_f22_33", 0), _in_float32("13.2", "winograd_f22_33")],
}


CATALOGUE = {
    "2.1": ("conv_forward", checks.conv_forward, [conv_forward_pad_one, conv_forward_flipped,
            conv_forward_no_bias, conv_forward_square_loops, conv_forward_library,
            conv_forward_reused_buffer, conv_forward_float32, conv_forward_pads_in_place]),
    "2.2": ("conv_dw", checks.conv_dw, [conv_dw_first_image, conv_dw_channels_swapped,
            conv_dw_square_loops, conv_dw_library, conv_dw_float32]),
    "2.3": ("conv_dx", checks.conv_dx, [conv_dx_not_flipped, conv_dx_cropped_at_the_corner,
            conv_dx_pad_one, conv_dx_library]),
    "3.1": ("bn_dx", checks.bn_dx, [bn_dx_no_xhat_term, bn_dx_unbiased, bn_dx_no_gamma,
            bn_dx_inference_mode, bn_dx_float32, bn_dx_scales_dout_in_place]),
    "3.2": ("bn_dparams", checks.bn_dparams, [bn_dparams_swapped, bn_dparams_batch_axis_only,
            bn_dparams_means]),
    "4.1": ("maxpool_forward", checks.maxpool_forward, [maxpool_floor_mode, maxpool_ties_to_the_last,
            maxpool_column_major_indices, maxpool_zero_padding, maxpool_writes_padding_into_x]),
    "4.2": ("maxpool_dx", checks.maxpool_dx, [maxpool_dx_no_crop, maxpool_dx_offsets_swapped,
            maxpool_dx_everywhere, maxpool_dx_library]),
    "4.3": ("unpool_forward", checks.unpool_forward, [unpool_nearest, unpool_offsets_swapped,
            unpool_no_crop, unpool_library, unpool_scales_values_in_place]),
    "4.4": ("unpool_dvalues", checks.unpool_dvalues, [unpool_dvalues_window_sum,
            unpool_dvalues_offsets_swapped, unpool_dvalues_window_max]),
    "5.1": ("ce_grad", checks.ce_grad, [ce_grad_no_shift, ce_grad_over_all_pixels,
            ce_grad_void_not_masked, ce_grad_pytorch_normalisation, ce_grad_library,
            ce_grad_void_by_bincount, ce_grad_float32, ce_grad_shifts_logits_in_place]),
    "5.2": ("median_frequency", checks.median_frequency, [median_frequency_global,
            median_frequency_void_counted, median_frequency_mean, median_frequency_absent_in_median,
            median_frequency_upper_median, median_frequency_float32, median_frequency_relabels_void_in_place]),
    "8.1": ("confusion", checks.confusion, [confusion_transposed, confusion_void_kept,
            confusion_diagonal_only, confusion_clears_void_in_place]),
    "8.2": ("scores_from", checks.scores, [scores_absent_as_zero, scores_union_double_counts,
            scores_g_as_class_mean, scores_iou_over_predicted, scores_absent_from_both_perfect]),
    "8.3": ("bf_score", checks.boundary_f1, [bf_tolerance_from_height, bf_exact_matching,
            bf_void_kept, bf_absent_classes_count, bf_library, bf_tolerance_rounded,
            bf_tolerance_from_longer_side, bf_denominators_swapped, bf_empty_both_perfect]),
    "10.1": ("conv_transpose_backward", checks.conv_transpose_backward, [tconv_dw_axes_swapped,
             tconv_no_padding_offset, tconv_stride_one, tconv_library]),
    "13.1": ("winograd_f23", checks.winograd_f23, [f23_without_the_half, f23_convolution,
             f23_half_in_the_tiles, f23_minus_sign_swapped, f23_tiles_as_columns]),
    "13.2": ("winograd_f22_33", checks.winograd_f22_33, [f22_33_one_side, f22_33_filter_transposed,
             f22_33_convolution, f22_33_rows_only_output]),
}


for _exercise, _answers in MORE_WRONG.items():
    CATALOGUE[_exercise][2].extend(_answers)


# -- 12.1 the capstone: the student's layers inside SegNet-Basic --------------------------------

LAYERS = ("conv_forward", "conv_dw", "conv_dx", "bn_dx", "bn_dparams", "maxpool_forward", "maxpool_dx",
          "unpool_forward", "unpool_dvalues", "ce_grad")
CAPSTONE_WRONG = {"conv_dx": conv_dx_not_flipped, "bn_dx": bn_dx_no_xhat_term,
                  "maxpool_dx": maxpool_dx_offsets_swapped, "unpool_forward": unpool_offsets_swapped,
                  "ce_grad": ce_grad_over_all_pixels, "bn_dparams": bn_dparams_swapped}


def _capstone(**replaced):
    layers = {name: SOLUTIONS["12.1"][name] for name in LAYERS}
    return capstone.library_signatures(**dict(layers, **replaced))


def test_capstone_solution_passes():
    assert checks.whole_model(_capstone()).startswith("exercise 12.1 passed")


@pytest.mark.parametrize("name", sorted(CAPSTONE_WRONG))
def test_a_wrong_layer_fails_the_whole_model(name):
    with pytest.raises(checks.ExerciseFailed, match="^exercise 12.1, case"):
        checks.whole_model(_capstone(**{name: CAPSTONE_WRONG[name]}))


def test_every_exercise_has_a_solution_a_check_and_a_catalogue():
    def order(e):
        return tuple(map(int, e.split(".")))
    assert sorted(SOLUTIONS, key=order) == sorted(list(CATALOGUE) + ["11.1", "12.1"], key=order)
    assert len(SOLUTIONS) >= 15
    assert all(len(wrong) >= 3 for _, _, wrong in CATALOGUE.values())
    assert len(DROPOUT_WRONG) >= 3 and len(CAPSTONE_WRONG) >= 3


@pytest.mark.parametrize("exercise", sorted(CATALOGUE))
def test_the_lessons_solution_passes(exercise):
    name, check, _ = CATALOGUE[exercise]
    assert check(SOLUTIONS[exercise][name]).startswith(f"exercise {exercise} passed")


@pytest.mark.parametrize("exercise,wrong", [(e, w) for e, (_, _, ws) in sorted(CATALOGUE.items()) for w in ws],
                         ids=lambda v: v if isinstance(v, str) else v.__name__)
def test_a_wrong_answer_fails(exercise, wrong):
    with pytest.raises(checks.ExerciseFailed, match=f"^exercise {exercise}, case"):
        CATALOGUE[exercise][1](wrong)


def test_dropout_solution_passes():
    solution = SOLUTIONS["11.1"]
    assert checks.dropout(solution["dropout_forward"], solution["dropout_backward"]).startswith(
        "exercise 11.1 passed")


@pytest.mark.parametrize("what", sorted(DROPOUT_WRONG) + sorted(DROPOUT_EXTRA))
def test_a_wrong_dropout_fails(what):
    with pytest.raises(checks.ExerciseFailed, match="^exercise 11.1, case"):
        checks.dropout(*{**DROPOUT_WRONG, **DROPOUT_EXTRA}[what])


# -- right answers written differently pass ---------------------------------------------------

def conv_forward_sliding_windows(x, w, b):
    k = w.shape[2]
    p = (k - 1) // 2
    windows = np.lib.stride_tricks.sliding_window_view(_pad(x, p), (k, k), axis=(2, 3))
    return np.einsum("nchwuv,fcuv->nfhw", windows, w) + b[None, :, None, None]


def bn_dparams_as_list(dout, xhat):
    return list(SOLUTIONS["3.2"]["bn_dparams"](dout, xhat))


def scores_as_array(conf):
    return np.array(SOLUTIONS["8.2"]["scores_from"](conf))


RIGHT_VARIANTS = {"2.1": conv_forward_sliding_windows, "3.2": bn_dparams_as_list, "8.2": scores_as_array}


@pytest.mark.parametrize("exercise", sorted(RIGHT_VARIANTS))
def test_a_right_answer_written_another_way_passes(exercise):
    assert CATALOGUE[exercise][1](RIGHT_VARIANTS[exercise]).startswith(f"exercise {exercise} passed")


def test_the_messages_say_what_is_wrong():
    with pytest.raises(checks.ExerciseFailed, match="wrote into its input x"):
        checks.conv_forward(conv_forward_pads_in_place)
    with pytest.raises(checks.ExerciseFailed, match="called again: return a new array"):
        checks.conv_forward(conv_forward_reused_buffer)
    with pytest.raises(checks.ExerciseFailed, match="float32's rounding: compute in float64"):
        checks.conv_forward(conv_forward_float32)
    with pytest.raises(checks.ExerciseFailed, match="return 2 things"):
        checks.bn_dparams(lambda dout, xhat: dout)


def test_the_library_is_back_after_a_check():
    with pytest.raises(checks.ExerciseFailed, match="switched off during this check"):
        checks.conv_forward(conv_forward_library)
    x = np.ones((1, 1, 3, 3))
    assert F.conv2d_forward(x, np.ones((1, 1, 3, 3)))[0][0, 0, 1, 1] == 9


def test_a_stub_is_not_a_failure_but_not_implemented():
    def stub(*args):
        raise NotImplementedError("exercise: write this part")
    with pytest.raises(NotImplementedError):
        checks.conv_forward(stub)
