"""Deterministic synthetic scenes of simple shapes for the demo data sets.

A scene is an image with a textured background and a few non-overlapping
filled shapes of three classes (rectangle, ellipse, triangle) in random
colours. Each shape is a polygon; the image and the shape's mask are rasterised
from that same polygon, so the COCO polygon annotation, the mask and the box
agree by construction. Everything depends only on the random generator given,
so a scene is reproducible from its seed.
"""
from typing import List, NamedTuple, Tuple

import cv2
import numpy as np

#: Class names, in category order (COCO ids 1, 2, 3; ADE label values 1, 2,
#: 3 with 0 = background).
CLASSES = ('rectangle', 'ellipse', 'triangle')


class Shape(NamedTuple):
    """One object of a scene.

    Attributes:
        label (int): Index into :data:`CLASSES`.
        polygon (np.ndarray): (N, 2) int32 vertices (x, y) in pixel indices,
            as rasterised by ``cv2.fillPoly``.
        mask (np.ndarray): (H, W) bool mask of the object's pixels.
    """
    label: int
    polygon: np.ndarray
    mask: np.ndarray


def _shape_polygon(rng: np.random.Generator, label: int, cx: float,
                   cy: float, size: float) -> np.ndarray:
    """Vertices of a shape of class ``label`` centred near (cx, cy) whose
    larger extent is about ``size`` pixels."""
    if CLASSES[label] == 'rectangle':
        aspect = rng.uniform(0.5, 1.0)
        w, h = size, size * aspect
        if rng.random() < 0.5:
            w, h = h, w
        angle = rng.uniform(-25, 25)  # mild rotation: stays rectangle-like
        pts = cv2.boxPoints(((cx, cy), (w, h), angle))
    elif CLASSES[label] == 'ellipse':
        a = size / 2
        b = a * rng.uniform(0.5, 1.0)
        angle = int(rng.integers(0, 180))
        pts = cv2.ellipse2Poly((int(round(cx)), int(round(cy))),
                               (int(round(a)), max(int(round(b)), 2)), angle,
                               0, 360, 6)
    else:  # triangle: vertices spread around a circle, no sliver triangles
        r = size / 2 * rng.uniform(0.85, 1.0)
        start = rng.uniform(0, 2 * np.pi)
        angles = start + np.deg2rad(np.array([0, 120, 240]) +
                                    rng.uniform(-20, 20, size=3))
        pts = np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], 1)
    return np.round(pts).astype(np.int32).reshape(-1, 2)


def _background(rng: np.random.Generator, height: int,
                width: int) -> Tuple[np.ndarray, np.ndarray]:
    """A textured background: a base colour, smooth low-frequency colour
    variation and a few thin random lines. Returns (image, base colour)."""
    base = rng.uniform(40, 215, size=3)
    grid = rng.normal(0, 30, size=(4, 4, 3)).astype(np.float32)
    smooth = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    img = np.clip(base + smooth, 0, 255)
    for _ in range(int(rng.integers(0, 4))):
        p1 = tuple(int(v) for v in rng.integers(0, [width, height]))
        p2 = tuple(int(v) for v in rng.integers(0, [width, height]))
        colour = tuple(float(c) for c in np.clip(
            base + rng.normal(0, 40, size=3), 0, 255))
        cv2.line(img, p1, p2, colour, 1, cv2.LINE_AA)
    return img, base


def _object_colour(rng: np.random.Generator,
                   background: np.ndarray) -> np.ndarray:
    """A random colour clearly different from the background colour."""
    for _ in range(100):
        colour = rng.uniform(0, 255, size=3)
        if np.abs(colour - background).sum() > 150:
            return colour
    return 255 - background  # unreachable in practice; still contrasting


def render_scene(rng: np.random.Generator,
                 width: int,
                 height: int,
                 max_objects: int = 4,
                 size_range: Tuple[float, float] = (0.2, 0.5),
                 noise_std: float = 6.0) -> Tuple[np.ndarray, List[Shape]]:
    """Render one scene.

    Args:
        rng (np.random.Generator): The only source of randomness.
        width (int): Image width in pixels.
        height (int): Image height in pixels.
        max_objects (int): The number of objects is drawn uniformly from
            ``1..max_objects`` (fewer when they do not fit without overlap).
        size_range (tuple[float, float]): Object extent as a fraction of the
            shorter image side.
        noise_std (float): Standard deviation of the per-pixel noise added to
            the whole image.

    Returns:
        tuple[np.ndarray, list[Shape]]: The (H, W, 3) uint8 BGR image and its
        objects (non-overlapping; each at least 4 pixels wide and high).
    """
    img, base = _background(rng, height, width)
    occupied = np.zeros((height, width), np.uint8)
    shapes = []
    short = min(width, height)
    for _ in range(int(rng.integers(1, max_objects + 1))):
        label = int(rng.integers(len(CLASSES)))
        for _attempt in range(20):
            size = rng.uniform(*size_range) * short
            cx = rng.uniform(size / 2, width - size / 2)
            cy = rng.uniform(size / 2, height - size / 2)
            poly = _shape_polygon(rng, label, cx, cy, size)
            if (poly.min() < 0 or poly[:, 0].max() >= width
                    or poly[:, 1].max() >= height):
                continue  # rotated corners outside the image
            canvas = np.zeros((height, width), np.uint8)
            cv2.fillPoly(canvas, [poly], 1)
            ys, xs = np.nonzero(canvas)
            if len(xs) == 0 or np.ptp(xs) < 3 or np.ptp(ys) < 3:
                continue
            # Keep a 2-pixel gap to the other objects.
            grown = cv2.dilate(canvas, np.ones((5, 5), np.uint8))
            if (grown & occupied).any():
                continue
            occupied |= canvas
            colour = _object_colour(rng, base)
            img[canvas.astype(bool)] = colour
            shapes.append(Shape(label, poly, canvas.astype(bool)))
            break
    img = img + rng.normal(0, noise_std, size=img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8), shapes


def scene_batch(num: int, height: int, width: int, seed: int = 0,
                max_objects: int = 3) -> Tuple[np.ndarray, List[List[Shape]]]:
    """``num`` scenes of one size drawn one after the other from
    ``np.random.default_rng(seed)`` (a batch for training checks).

    Returns:
        tuple[np.ndarray, list[list[Shape]]]: (num, H, W, 3) uint8 BGR
        images and the objects of each.
    """
    rng = np.random.default_rng(seed)
    scenes = [render_scene(rng, width, height, max_objects=max_objects)
              for _ in range(num)]
    return np.stack([img for img, _ in scenes]), [s for _, s in scenes]


def mask_to_bbox(mask: np.ndarray) -> List[float]:
    """COCO box ``[x, y, w, h]`` covering the True pixels of ``mask``
    (pixel ``i`` spans ``[i, i + 1)``)."""
    ys, xs = np.nonzero(mask)
    x0, y0 = int(xs.min()), int(ys.min())
    return [float(x0), float(y0), float(xs.max() + 1 - x0),
            float(ys.max() + 1 - y0)]


def polygon_to_coco(polygon: np.ndarray) -> List[float]:
    """Flat COCO polygon ``[x1, y1, x2, y2, ...]`` of a polygon rasterised by
    ``cv2.fillPoly``: its integer vertices are pixel indices, whose centres
    are at +0.5 in COCO's continuous coordinates."""
    return [round(float(v) + 0.5, 2) for v in polygon.reshape(-1)]
