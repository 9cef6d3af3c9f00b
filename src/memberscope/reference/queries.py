"""Test-time views of images (queries), as pure numpy functions on NHWC arrays."""

from __future__ import annotations

import numpy as np

from memberscope.errors import InputError


def shift_images(images: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Shift (N, H, W, C) images by ``dx`` pixels right and ``dy`` down, zero-filled."""
    shifted = np.zeros_like(images)
    height, width = images.shape[1:3]
    if abs(dx) >= width or abs(dy) >= height:
        return shifted
    src_y = slice(max(0, -dy), height - max(0, dy))
    dst_y = slice(max(0, dy), height - max(0, -dy))
    src_x = slice(max(0, -dx), width - max(0, dx))
    dst_x = slice(max(0, dx), width - max(0, -dx))
    shifted[:, dst_y, dst_x] = images[:, src_y, src_x]
    return shifted


def query_view(images: np.ndarray, query: str) -> np.ndarray:
    """One view of (N, H, W, C) images: ``identity``, ``hflip`` or ``shift:DX:DY``."""
    if query == "identity":
        return images
    if query == "hflip":
        return images[:, :, ::-1]
    if query.startswith("shift:"):
        try:
            _, dx, dy = query.split(":")
            return shift_images(images, int(dx), int(dy))
        except ValueError:
            pass
    raise InputError(f"unknown query {query!r}; valid: identity, hflip, shift:DX:DY")
