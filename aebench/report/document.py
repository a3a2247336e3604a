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


UNRESOLVED_MARK = "†"
TABLE_LEGEND = (
    "bold: best of the column by its direction (density: nearest 1; density and precision only "
    "where also best, or not resolved from the best, on coverage and recall); a row with a seed "
    "at its epoch cap, or whose samples cover under half of the classes, is never bold (named "
    "under the table); "
    f"{UNRESOLVED_MARK}: difference from the best not resolved (its 95% CI spans 0, or a side has "
    "one seed; per comparison, not adjusted), listed under the table"
)


@dataclass(frozen=True)
class Cell:
    text: str
    best: bool = False  # the best value of its column
    unresolved: bool = False  # its difference from the best is not resolved


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    caption: str = ""
    notes: tuple[str, ...] = ()  # inline Markdown lines under the table (the † differences)

    @property
    def marked(self) -> bool:
        return any(c.best or c.unresolved for row in self.rows for c in row)


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
