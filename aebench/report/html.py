"""The report as one self-contained HTML page: inline CSS, figures as data URIs, no JavaScript.

The page must open anywhere, offline and years later, exactly as it was written: so nothing in it
points outside the file, and a Content-Security-Policy tells the browser to load nothing that
does. Every text is escaped before the small inline-Markdown subset becomes tags.
"""

from __future__ import annotations

import base64
import errno
import html
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from aebench.io import write_text
from aebench.report.document import (
    TABLE_LEGEND,
    UNRESOLVED_MARK,
    Block,
    BulletList,
    Cell,
    Document,
    Figure,
    Heading,
    Paragraph,
    Table,
)

LEGEND = TABLE_LEGEND
NUM_CLASS = ' class="num"'
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Only inline styles and data: images may load; everything else is refused by the browser too.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

STYLE = """
:root {
  color-scheme: light;
  --text: #1f2328; --muted: #59636e; --rule: #d1d9e0; --soft: #f6f8fa;
  --accent: #0969da; --best: #dafbe1; --unresolved: #f0f9f1; --warn-bg: #fff8c5; --warn: #9a6700;
}
* { box-sizing: border-box; }
html { font-size: 16px; -webkit-text-size-adjust: 100%; }
body {
  margin: 0 auto; max-width: 1100px; padding: 2rem 1.5rem 4rem;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
    "Noto Sans", "DejaVu Sans", sans-serif;
  font-size: 1rem; line-height: 1.55; color: var(--text); background: #fff;
}
h1, h2, h3, h4, h5, h6 { line-height: 1.25; margin: 1.8em 0 0.6em; }
h1 { font-size: 2rem; margin-top: 0; padding-bottom: 0.3em; border-bottom: 1px solid var(--rule); }
h2 { font-size: 1.5rem; padding-bottom: 0.25em; border-bottom: 1px solid var(--rule); }
h3 { font-size: 1.2rem; }
h4 { font-size: 1.05rem; }
h2, h3, h4, h5, h6 { scroll-margin-top: 1rem; }
p, ul, figure, .table-wrap, .callout { margin: 0 0 1rem; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
code {
  font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace;
  font-size: 0.875em; background: var(--soft); border-radius: 4px; padding: 0.1em 0.35em;
}
nav.toc {
  background: var(--soft); border: 1px solid var(--rule); border-radius: 6px;
  padding: 0.75rem 1.25rem; margin: 0 0 1.5rem; font-size: 0.95rem;
  width: fit-content; min-width: min(18rem, 100%); max-width: 100%;
}
nav.toc h2 {
  font-size: 0.8rem; text-transform: uppercase; letter-spacing: 0.06em; color: var(--muted);
  margin: 0 0 0.4rem; padding: 0; border: 0;
}
nav.toc ol { margin: 0; padding-left: 1.4rem; }
nav.toc li { margin: 0.1rem 0; }
.callout {
  border: 1px solid #d4a72c66; border-left: 4px solid var(--warn); border-radius: 6px;
  background: var(--warn-bg); padding: 0.75rem 1rem;
}
.callout { display: flex; gap: 0.6rem; }
.callout::before { content: "⚠"; color: var(--warn); font-weight: 700; font-size: 1.1rem; }
.callout p { margin: 0; }
.table-wrap { overflow-x: auto; max-width: 100%; }
table {
  border-collapse: collapse; font-size: 0.9rem; font-variant-numeric: tabular-nums lining-nums;
}
caption { caption-side: top; text-align: left; color: var(--muted); padding: 0 0 0.4rem; }
th, td {
  padding: 0.35rem 0.7rem; border-bottom: 1px solid var(--rule); vertical-align: top;
  background: #fff;
}
th { background: var(--soft); font-weight: 600; text-align: left; border-bottom-width: 2px; }
td { white-space: nowrap; position: relative; }
th.num, td.num { text-align: right; padding-right: 1.1rem; }
/* The variant column stays in view while a wide table scrolls sideways. */
th:first-child, td:first-child { position: sticky; left: 0; z-index: 1; }
td.best { background: var(--best); }
td.unresolved { background: var(--unresolved); }
/* Outside the number's box, so marked and unmarked values stay aligned on the decimal side. */
.dagger { position: absolute; right: 0.3rem; color: var(--muted); }
p.legend { font-size: 0.8rem; color: var(--muted); margin-top: -0.6rem; }
ul.notes { font-size: 0.8rem; color: var(--muted); margin-top: -0.6rem; padding-left: 1.2rem; }
figure { text-align: center; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--rule); border-radius: 4px; }
figcaption { font-size: 0.9rem; color: var(--muted); margin-top: 0.4rem; }
@media (max-width: 600px) {
  html { font-size: 15px; }
  body { padding: 1rem 0.75rem 2rem; }
}
@media print {
  @page { margin: 1.5cm; }
  html { font-size: 10.5pt; }
  body { max-width: none; padding: 0; }
  a { color: inherit; }
  .table-wrap { overflow: visible; }
  table { font-size: 0.75rem; }
  th, td { padding: 0.2rem 0.35rem; white-space: normal; }
  th.num, td.num { padding-right: 0.8rem; }
  .dagger { right: 0.1rem; }
  table, figure, .callout { break-inside: avoid; }
  h1, h2, h3, h4 { break-after: avoid; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""

_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_ITALIC = re.compile(r"(?<![*\w])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![*\w])")
_NUMERIC = re.compile(r"^[+\-−]?(\d|\.\d|inf\b|nan\b)", re.IGNORECASE)
_DASHES = {"–", "—", "-", "−", ""}


def inline(text: str) -> str:
    """Escape ``text``, then turn **bold**, *italic* and `code` into tags (code spans verbatim)."""
    parts = _CODE.split(text)
    out = []
    for index, part in enumerate(parts):
        escaped = html.escape(part, quote=False)
        if index % 2:
            out.append(f"<code>{escaped}</code>")
        else:
            escaped = _BOLD.sub(r"<strong>\1</strong>", escaped)
            out.append(_ITALIC.sub(r"<em>\1</em>", escaped))
    return "".join(out)


def plain(text: str) -> str:
    """Inline Markdown without its markers: for slugs, alt texts and column types."""
    return text.replace("**", "").replace("`", "").replace("*", "")


def slugify(text: str, taken: set[str]) -> str:
    """A readable, unique anchor id: ``## MNIST results`` becomes ``mnist-results``."""
    base = re.sub(r"[^\w]+", "-", plain(text).lower(), flags=re.ASCII).strip("-") or "section"
    slug, number = base, 2
    while slug in taken:
        slug, number = f"{base}-{number}", number + 1
    taken.add(slug)
    return slug


def _attr(value: str) -> str:
    return html.escape(value, quote=True)


def figure_data_uri(path: Path) -> str:
    """The PNG at ``path`` as a data URI; a missing or non-PNG file is an error, never a gap."""
    if not path.is_file():
        raise FileNotFoundError(errno.ENOENT, "report figure is missing", str(path))
    data = path.read_bytes()
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError(f"report figure is not a PNG: {path}")
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def render_figure(figure: Figure, base_dir: Path) -> str:
    src = figure_data_uri(Path(base_dir) / figure.path)
    alt = plain(figure.alt or figure.caption)
    caption = f"<figcaption>{inline(figure.caption)}</figcaption>" if figure.caption else ""
    return f'<figure><img src="{src}" alt="{_attr(alt)}">{caption}</figure>'


def _is_numeric_column(cells: Iterable[Cell]) -> bool:
    """Right-align a column when every filled cell in it reads as a number."""
    texts = [plain(cell.text).strip() for cell in cells]
    filled = [text for text in texts if text not in _DASHES]
    return bool(filled) and all(_NUMERIC.match(text) for text in filled)


def _cell(cell: Cell, numeric: bool) -> str:
    classes = [name for name, on in (("num", numeric), ("best", cell.best)) if on]
    # A line may break before "±" (print, narrow pages), never between it and the spread.
    body = inline(cell.text).replace(" ± ", " ±\u00a0")
    if cell.best:
        body = f"<strong>{body}</strong>"
    elif cell.unresolved:
        classes.append("unresolved")
        body += (
            f'<span class="dagger" title="difference from the best not resolved">'
            f"{UNRESOLVED_MARK}</span>"
        )
    class_attr = f' class="{" ".join(classes)}"' if classes else ""
    return f"<td{class_attr}>{body}</td>"


def render_table(table: Table) -> str:
    width = max([len(table.header), *(len(row) for row in table.rows)])
    columns = [[row[i] for row in table.rows if i < len(row)] for i in range(width)]
    numeric = [i > 0 and _is_numeric_column(column) for i, column in enumerate(columns)]
    head = "".join(
        f'<th{NUM_CLASS if numeric[i] else ""} scope="col">{inline(text)}</th>'
        for i, text in enumerate(table.header)
    )
    body = "".join(
        "<tr>" + "".join(_cell(cell, numeric[i]) for i, cell in enumerate(row)) + "</tr>"
        for row in table.rows
    )
    caption = f"<caption>{inline(table.caption)}</caption>" if table.caption else ""
    legend = f'<p class="legend">{html.escape(LEGEND)}</p>' if table.marked else ""
    notes = ""
    if table.notes:
        notes = '<ul class="notes">' + "".join(f"<li>{inline(n)}</li>" for n in table.notes)
        notes += "</ul>"
    return (
        f'<div class="table-wrap"><table>{caption}<thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>{legend}{notes}"
    )


def render_paragraph(paragraph: Paragraph) -> str:
    if paragraph.warning:
        return f'<div class="callout" role="note"><p>{inline(paragraph.text)}</p></div>'
    return f"<p>{inline(paragraph.text)}</p>"


def render_list(items: Sequence[str]) -> str:
    return "<ul>" + "".join(f"<li>{inline(item)}</li>" for item in items) + "</ul>"


def heading_ids(blocks: Sequence[Block]) -> dict[int, str]:
    """Slugs for every heading, keyed by block position, unique across the page."""
    taken: set[str] = {"contents"}
    return {
        index: slugify(block.text, taken)
        for index, block in enumerate(blocks)
        if isinstance(block, Heading)
    }


def render_toc(blocks: Sequence[Block], ids: dict[int, str]) -> str:
    """A contents box of the level-2 headings: the report is long and read by section."""
    links = [
        f'<li><a href="#{ids[index]}">{inline(block.text)}</a></li>'
        for index, block in enumerate(blocks)
        if isinstance(block, Heading) and block.level == 2
    ]
    if not links:
        return ""
    return f'<nav class="toc" id="contents"><h2>Contents</h2><ol>{"".join(links)}</ol></nav>'


def render_heading(heading: Heading, slug: str) -> str:
    level = min(max(heading.level, 1), 6)
    return f'<h{level} id="{slug}">{inline(heading.text)}</h{level}>'


def render_block(block: Block, base_dir: Path, slug: str = "") -> str:
    if isinstance(block, Heading):
        return render_heading(block, slug)
    if isinstance(block, Paragraph):
        return render_paragraph(block)
    if isinstance(block, BulletList):
        return render_list(block.items)
    if isinstance(block, Table):
        return render_table(block)
    if isinstance(block, Figure):
        return render_figure(block, base_dir)
    raise TypeError(f"unknown report block: {block!r}")


def render_body(doc: Document, base_dir: Path) -> list[str]:
    """The blocks in order, with the contents box right after the page title (or first)."""
    blocks = doc.blocks
    ids = heading_ids(blocks)
    toc = render_toc(blocks, ids)
    titled = bool(blocks) and isinstance(blocks[0], Heading) and blocks[0].level == 1
    parts = [render_block(block, base_dir, ids.get(i, "")) for i, block in enumerate(blocks)]
    if toc:
        parts.insert(1 if titled else 0, toc)
    return parts


def render_html(doc: Document, base_dir: Path, title: str = "aebench report") -> str:
    """One HTML5 page that needs nothing but itself: no URL, font or script from elsewhere."""
    body = "\n".join(render_body(doc, Path(base_dir)))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n"
        f"<style>{STYLE}</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def write_html(doc: Document, base_dir: Path, out_path: Path) -> None:
    """Render and write atomically, so a failed render never replaces a good page; UTF-8 whatever
    the locale, as the page declares."""
    write_text(Path(out_path), render_html(doc, Path(base_dir)))
