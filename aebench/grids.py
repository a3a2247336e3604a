"""Names and shapes of the saved image grids, shared by the evaluate stage (which writes them)
and the report (which finds them): a module of its own so the report does not depend on the
evaluation code."""

from __future__ import annotations

import numpy as np


def denoise_grid_level(levels: tuple[float, ...]) -> float:
    """The grid level the saved denoising example shows: the middle of the kind's grid."""
    return levels[len(levels) // 2]


def denoise_grid_name(kind: str, level: float) -> str:
    """File stem of the saved denoising example (clean | corrupted | output rows)."""
    return f"denoise_{kind}_{level:g}"


def grid_columns(grid_images: int) -> int:
    """Images per row of a square-ish grid holding ``grid_images`` images."""
    return max(1, int(np.ceil(np.sqrt(grid_images))))
