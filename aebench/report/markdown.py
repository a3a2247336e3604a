"""Render a :class:`~aebench.report.document.Document` as GitHub-flavoured Markdown."""

from __future__ import annotations

from aebench.report.document import (
    TABLE_LEGEND,
    UNRESOLVED_MARK,
    BulletList,
    Cell,
    Document,
    Figure,
    Heading,
    Paragraph,
    Table,
)


def _cell(cell: Cell) -> str:
    if cell.best:
        return f"**{cell.text}**"
    if cell.unresolved:
        return f"{cell.text} {UNRESOLVED_MARK}"
    return cell.text


def _table(table: Table) -> list[str]:
    lines = ["| " + " | ".join(table.header) + " |", "|" + "---|" * len(table.header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows]
    if table.marked:
        lines += ["", f"<sub>{TABLE_LEGEND}.</sub>"]
    if table.notes:
        lines += ["", *(f"- {note}" for note in table.notes)]
    if table.caption:
        lines += ["", f"*{table.caption}*"]
    return lines


def render_markdown(doc: Document) -> str:
    parts: list[str] = []
    for block in doc.blocks:
        if isinstance(block, Heading):
            parts += ["#" * block.level + " " + block.text]
        elif isinstance(block, Paragraph):
            parts += [f"> **Warning:** {block.text}" if block.warning else block.text]
        elif isinstance(block, BulletList):
            parts += ["\n".join(f"- {item}" for item in block.items)]
        elif isinstance(block, Table):
            parts += ["\n".join(_table(block))]
        elif isinstance(block, Figure):
            parts += [
                f"![{block.alt or block.caption}]({block.path.as_posix()})\n\n*{block.caption}*"
            ]
        parts.append("")
    return "\n".join(parts).rstrip() + "\n"
