"""PNG grids of images for the evaluate stage, without importing torchvision.

`torchvision.utils.save_image` is what this replaces, byte for byte (tests/test_png_grid.py
checks it against torchvision): importing torchvision takes 2.7 s of the evaluate stage's 5.2 s
start-up (it pulls in torch._dynamo through torchvision.ops), paid by each of the default
matrix's 40 evaluate stages for one function that tiles images and calls PIL.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image


def tile(images: torch.Tensor, columns: int, padding: int = 1) -> torch.Tensor:
    """N×C×H×W images in [0, 1] as one 3×H'×W' grid, ``columns`` per row, ``padding`` black
    pixels around every image (grey images repeated to RGB, as torchvision's make_grid does)."""
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected N×C×H×W images with 1 or 3 channels, got {tuple(images.shape)}")
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    count, channels, height, width = images.shape
    if count == 1:
        return images[0]
    across = min(columns, count)
    down = -(-count // across)
    cell_h, cell_w = height + padding, width + padding
    grid = images.new_zeros((channels, cell_h * down + padding, cell_w * across + padding))
    for index in range(count):
        row, column = divmod(index, across)
        top, left = row * cell_h + padding, column * cell_w + padding
        grid[:, top : top + height, left : left + width] = images[index]
    return grid


def save_grid(images: torch.Tensor, path: Path, columns: int, padding: int = 1) -> None:
    """Write ``images`` as an 8-bit RGB PNG grid (values rounded as torchvision rounds them)."""
    grid = tile(images.detach().cpu(), columns, padding)
    pixels = grid.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to(torch.uint8).numpy()
    Image.fromarray(pixels).save(path, format="PNG")
