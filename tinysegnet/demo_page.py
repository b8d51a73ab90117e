"""The demo's page and what it computes for one upload: the image decoded with every check a
street photo from a phone needs, segmented, and drawn as HTML with inline PNGs.

Kept apart from the server (``demo.py``) so that tests and scripts can call it directly.
"""

import base64
import html
import io
import time
import warnings

import numpy as np
from PIL import Image, ImageOps

from . import engine, nn
from .data.classes import config_classes
from .viz import colorize, overlay, uncertainty_bound, with_legend

MAX_BYTES = 20_000_000     # an upload larger than this is refused before it is decoded
MAX_PIXELS = 40_000_000    # a decoded image larger than this (a decompression bomb) is refused
MIN_SIDE = 16              # smaller images carry no scene to segment


class BadUpload(ValueError):
    """An upload the demo cannot segment: its message is shown on the page."""


def decode(data):
    """Uploaded bytes -> RGB uint8 (H, W, 3), rotated as its EXIF says, CMYK or palette
    converted; BadUpload with a sentence for anything else."""
    if not data:
        raise BadUpload("the upload was empty: choose an image file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise BadUpload(f"the image is {im.width}x{im.height}: more than {MAX_PIXELS // 1_000_000} "
                                    f"million pixels; send a smaller one")
                if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                    raise BadUpload(f"a {im.mode} image (16-bit or floating point): save it with 8 bits per channel")
                image = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    except BadUpload:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadUpload(f"the image has more than {MAX_PIXELS // 1_000_000} million pixels; "
                        f"send a smaller one") from None
    except Exception as e:  # PIL raises several types for bytes that are no image it reads
        raise BadUpload(f"not an image PIL can read ({type(e).__name__}); send a PNG or JPEG") from None
    if min(image.shape[:2]) < MIN_SIDE:
        raise BadUpload(f"the image is {image.shape[1]}x{image.shape[0]}: at least {MIN_SIDE} pixels a side, please")
    return image


def _png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _uncertainty_png(uncertainty, scale):
    """The uncertainty map in the inferno colour map on the fixed scale 0..``scale``."""
    from matplotlib import colormaps
    rgba = colormaps["inferno"](np.clip(uncertainty / scale, 0, 1))
    return _png((rgba[..., :3] * 255).astype(np.uint8))


def segment(model, config, image, samples=0):
    """{"labels", "overlay", "uncertainty" (data URLs), "shares" [(name, colour, %)], "ms"} of one
    image: the model's prediction (with ``samples`` > 0 on a Bayesian model, the Monte Carlo
    estimate and its uncertainty)."""
    classes = config_classes(config)
    start = time.perf_counter()
    if samples:
        labels, uncertainty = engine.predict_monte_carlo(model, image, config.mean, config.std, config.size,
                                                         samples, 0, config.input_norm)
    else:
        labels = engine.predict(model, image, config.mean, config.std, config.size, config.input_norm)
    ms = 1000 * (time.perf_counter() - start)
    counts = np.bincount(labels.ravel(), minlength=len(classes))[:len(classes)]
    shares = sorted(((name, classes.colors[i], 100 * counts[i] / labels.size) for i, name in enumerate(classes.names)
                     if counts[i]), key=lambda s: -s[2])
    out = dict(labels=_png(with_legend(colorize(labels, classes.palette), classes.names, classes.palette, False)),
               overlay=_png(overlay(image, labels, palette=classes.palette)), shares=shares, ms=ms,
               size=image.shape[:2], samples=samples)
    if samples:
        out["uncertainty"] = _uncertainty_png(uncertainty, uncertainty_bound(len(classes)))
    return out


STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
#drop{border:2px dashed #888;border-radius:8px;padding:1.5em;text-align:center}
#drop.over{background:#eef}.error{background:#fdd;border:1px solid #c66;padding:.8em;border-radius:6px}
.row{display:flex;gap:1em;flex-wrap:wrap}.row figure{margin:0;flex:1;min-width:300px}
img{max-width:100%;image-rendering:pixelated}table{border-collapse:collapse}td{padding:2px 8px}
.swatch{display:inline-block;width:1em;height:1em;border:1px solid #666;vertical-align:middle}"""

# Dropping a file on the box puts it in the form's file input and sends the form: no framework.
SCRIPT = """const drop=document.getElementById('drop'),input=document.getElementById('image');
drop.addEventListener('dragover',e=>{e.preventDefault();drop.classList.add('over')});
drop.addEventListener('dragleave',()=>drop.classList.remove('over'));
drop.addEventListener('drop',e=>{e.preventDefault();input.files=e.dataTransfer.files;drop.parentNode.submit()});
input.addEventListener('change',()=>drop.parentNode.submit());"""


def page(title, model_line, result=None, error=None, samples_possible=False, samples=0):
    """The whole HTML page: the upload form, then the error or the result of the last upload."""
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title>"
             f"<style>{STYLE}</style></head><body><h1>{e(title)}</h1><p>{e(model_line)}</p>",
             "<form method='post' action='/segment' enctype='multipart/form-data'>"
             "<div id='drop'><p>Drop a street image here, or choose one:</p>"
             "<input type='file' id='image' name='image' accept='image/*'>"]
    if samples_possible:
        parts.append(f"<p><label>Monte Carlo samples (uncertainty): <input type='number' name='samples' min='0' "
                     f"max='50' value='{samples}'></label></p>")
    parts.append("<noscript><button type='submit'>Segment</button></noscript></div></form>")
    if error:
        parts.append(f"<p class='error' id='error'>{e(error)}</p>")
    if result:
        h, w = result["size"]
        how = f", {result['samples']} Monte Carlo samples" if result["samples"] else ""
        parts.append(f"<h2>Result</h2><p id='timing'>{w}x{h} image segmented in {result['ms']:.0f} ms{how}.</p>"
                     f"<div class='row'><figure><img id='labels' alt='labels' src='{result['labels']}'>"
                     f"<figcaption>classes</figcaption></figure><figure><img id='overlay' alt='overlay' "
                     f"src='{result['overlay']}'><figcaption>overlay</figcaption></figure>")
        if "uncertainty" in result:
            parts.append(f"<figure><img id='uncertainty' alt='uncertainty' src='{result['uncertainty']}'>"
                         f"<figcaption>uncertainty (variance of the sampled class probabilities, mean over "
                         f"classes; black 0, yellow the largest it can be)</figcaption></figure>")
        parts.append("</div><h3>Pixels per class</h3><table id='shares'>")
        for name, colour, share in result["shares"]:
            parts.append(f"<tr><td><span class='swatch' style='background:rgb{tuple(colour)}'></span> {e(name)}</td>"
                         f"<td>{share:.1f}%</td></tr>")
        parts.append("</table>")
    parts.append(f"<script>{SCRIPT}</script></body></html>")
    return "".join(parts)


def has_dropout(model):
    return bool(nn.dropout_layers(model))
