"""A report as a list of plain blocks, rendered to Markdown and to self-contained HTML alike.

Building the content once and rendering it twice keeps README.md and index.html saying the same
thing; the renderers know nothing about metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Heading:
    level: int  # 1 = page title
    text: str


@dataclass(frozen=True)
class Paragraph:
    text: str  # inline Markdown: **bold**, *italic*, `code`
    warning: bool = False  # rendered as a call-out


@dataclass(frozen=True)
class BulletList:
    items: tuple[str, ...]


TIE_MARK = "†"
TABLE_LEGEND = (
    f"bold: best; {TIE_MARK}: not distinguishable from the best at 95% confidence over seeds"
)


@dataclass(frozen=True)
class Cell:
    text: str
    best: bool = False  # the best value of its column
    tie: bool = False  # not distinguishable from the best at 95% confidence


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    caption: str = ""


@dataclass(frozen=True)
class Figure:
    path: Path  # a PNG, relative to the report's directory
    caption: str
    alt: str = ""


Block = Heading | Paragraph | BulletList | Table | Figure


@dataclass
class Document:
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> Document:
        self.blocks.extend(blocks)
        return self
