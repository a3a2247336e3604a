"""The evaluate stage's PNG grids: byte for byte what torchvision's save_image writes."""

import pytest
import torch
from torchvision.utils import save_image

from aebench.png_grid import save_grid, tile


@pytest.mark.parametrize(
    ("count", "channels", "columns", "padding", "dtype"),
    [
        (16, 1, 4, 1, torch.float32),
        (10, 1, 4, 1, torch.float32),
        (7, 3, 3, 1, torch.float32),
        (3, 1, 8, 1, torch.float32),
        (1, 1, 4, 1, torch.float32),
        (1, 3, 2, 1, torch.float32),
        (10, 1, 4, 0, torch.float32),
        (10, 1, 3, 2, torch.float64),
    ],
)
def test_png_bytes_equal_torchvision(tmp_path, count, channels, columns, padding, dtype):
    generator = torch.Generator().manual_seed(count * 10 + channels)
    images = torch.rand(count, channels, 5, 6, generator=generator, dtype=dtype)
    images[0, 0, 0, 0] = 1.0  # the rounding edges: 1.0 -> 255 and x.5/255 values
    images[-1, 0, -1, -1] = 0.5 / 255
    save_image(images, tmp_path / "torchvision.png", nrow=columns, padding=padding)
    save_grid(images, tmp_path / "ours.png", columns, padding=padding)
    assert (tmp_path / "ours.png").read_bytes() == (tmp_path / "torchvision.png").read_bytes()


def test_tile_places_each_image_in_its_cell():
    images = torch.arange(1, 6, dtype=torch.float32).view(5, 1, 1, 1).expand(5, 1, 2, 2) / 10
    grid = tile(images, columns=3, padding=1)
    assert grid.shape == (3, 1 + 2 * 3, 1 + 3 * 3)  # two rows of three cells of (2 + 1) pixels
    assert grid[0, 1, 1].item() == pytest.approx(0.1)  # first image, top-left cell
    assert grid[0, 4, 4].item() == pytest.approx(0.5)  # fifth image: second row, second column
    assert grid[0, 4, 7].item() == 0  # sixth cell is empty
    assert grid[:, 0, :].abs().sum().item() == 0  # the top padding row is black


def test_tile_rejects_a_wrong_shape():
    with pytest.raises(ValueError, match="1 or 3 channels"):
        tile(torch.zeros(2, 2, 4, 4), columns=2)
