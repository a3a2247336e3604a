"""The HTML report is one self-contained page: every figure inlined, nothing fetched, text escaped.

``demo_document`` is shared with tests/test_browser.py, which opens the same page in Chromium.
"""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from matplotlib.figure import Figure as PlotFigure

from aebench.report.document import (
    BulletList,
    Cell,
    Document,
    Figure,
    Heading,
    Paragraph,
    Table,
)
from aebench.report.html import LEGEND, inline, render_html, slugify, write_html

HOSTILE = "<script>alert('x')</script> & \"quotes\""


def write_png(path: Path, seed: int) -> bytes:
    """A small but real plot, so a screenshot shows whether figures render sensibly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = PlotFigure(figsize=(4, 2.5), dpi=80, layout="tight")  # no pyplot: no global state
    ax = fig.subplots()
    xs = range(10)
    ax.plot(xs, [(x * (seed + 1)) % 7 for x in xs], marker="o")
    ax.set_title(f"figure {seed}")
    fig.savefig(path, format="png")
    return path.read_bytes()


def wide_table() -> Table:
    """More columns than fit the page: it must scroll inside its box, not widen the page."""
    header = ("variant", *(f"noise {k} AUC ↑" for k in range(12)))
    rows = tuple(
        (
            Cell(name),
            *(
                Cell(
                    f"0.{70 + i + k:02d} ± 0.0{k % 9 + 1}",
                    best=i == 0 and k % 2 == 0,
                    unresolved=i == 1,
                )
                for k in range(12)
            ),
        )
        for i, name in enumerate(("vae", "dae", "*validation split (reference, n=500)*"))
    )
    return Table(header, rows, caption="Robustness over twelve noise levels")


def demo_document(base_dir: Path) -> tuple[Document, dict[Path, bytes]]:
    """A document with every block type; returns it with the bytes of each figure it shows."""
    figures = {
        Path("figures/recon.png"): write_png(base_dir / "figures/recon.png", 0),
        Path("figures/samples.png"): write_png(base_dir / "figures/samples.png", 1),
    }
    doc = Document().add(
        Heading(1, "aebench results"),
        Paragraph("Mean ± std over **3 seeds**; ↑ higher is better, *↓ lower* is better."),
        Paragraph(f"Hostile text stays text: {HOSTILE}"),
        Heading(2, "mnist"),
        Paragraph("**Warning: evaluator accuracy 91.00% is below 97%.**", warning=True),
        Heading(3, "Reconstruction"),
        Table(
            header=("variant", "MSE ↓", "latent dim", "encoder"),
            rows=(
                (Cell("`vae`"), Cell("0.0123 ± 0.001", best=True), Cell("16"), Cell("conv 3×3")),
                (
                    Cell("`dae`"),
                    Cell("0.0131 ± 0.002", unresolved=True),
                    Cell("16"),
                    Cell("conv 3×3"),
                ),
                (Cell("`ae`"), Cell("0.0200 ± 0.004"), Cell("−"), Cell("conv 3×3")),
            ),
            caption="Clean test split",
            notes=(
                "† MSE ↓ (best **vae**; variant − vae): dae +0.0008 (95% CI −0.0004 to 0.0020)",
            ),
        ),
        wide_table(),
        Table(header=("variant", "params"), rows=((Cell("ae"), Cell("12,345")),)),
        Figure(Path("figures/recon.png"), "Reconstructions, **top**: input", alt="reconstructions"),
        Heading(2, "mnist"),
        Figure(Path("figures/samples.png"), "Samples from the `prior`"),
        Heading(2, "Glossary"),
        BulletList(("**MSE**: mean squared error", "**AUC**: area under the curve, `mean`")),
    )
    return doc, figures


class PageParser(HTMLParser):
    """Collects every tag with its attributes, and the text of <style> elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {name: value or "" for name, value in attrs}))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


def parse(page: str) -> PageParser:
    parser = PageParser()
    parser.feed(page)
    parser.close()
    return parser


def classes(attrs: dict[str, str]) -> set[str]:
    return set(attrs.get("class", "").split())


@pytest.fixture
def page(tmp_path: Path) -> tuple[str, dict[Path, bytes]]:
    doc, figures = demo_document(tmp_path)
    return render_html(doc, tmp_path), figures


def test_every_figure_is_inlined_byte_for_byte(page: tuple[str, dict[Path, bytes]]) -> None:
    text, figures = page
    images = [attrs for tag, attrs in parse(text).tags if tag == "img"]
    assert len(images) == len(figures)
    prefix = "data:image/png;base64,"
    decoded = [base64.b64decode(img["src"].removeprefix(prefix), validate=True) for img in images]
    assert all(img["src"].startswith(prefix) for img in images)
    assert decoded == list(figures.values())
    assert [img["alt"] for img in images] == ["reconstructions", "Samples from the prior"]
    assert text.count("<figcaption>") == len(figures)


def test_nothing_points_outside_the_page(page: tuple[str, dict[Path, bytes]]) -> None:
    text, _ = page
    parsed = parse(text)
    assert parsed.tags[0][0] == "html" and text.startswith("<!DOCTYPE html>")
    for tag, attrs in parsed.tags:
        assert tag not in {"script", "link", "iframe", "object", "embed", "base"}, tag
        for name in ("src", "href", "srcset", "action", "poster", "data"):
            value = attrs.get(name)
            if value is None:
                continue
            assert value.startswith("data:image/png;base64,") or value.startswith("#"), value
            assert "//" not in value.split(",")[0], value
    style = "".join(parsed.styles)
    assert style, "CSS must be inline"
    assert "@import" not in style and "url(" not in style and "@font-face" not in style
    assert not re.search(r"(https?:)?//[\w.-]+\.\w", text.replace("data:image/png", ""))


def test_text_is_escaped_and_markdown_becomes_tags(page: tuple[str, dict[Path, bytes]]) -> None:
    text, _ = page
    assert "<script" not in text
    assert "&lt;script&gt;alert('x')&lt;/script&gt; &amp; \"quotes\"" in text
    assert "<strong>3 seeds</strong>" in text and "<em>↓ lower</em>" in text
    assert "<code>prior</code>" in text and "<strong>MSE</strong>" in text
    assert inline("**x**") == "<strong>x</strong>"
    assert inline("`**not bold** <b>`") == "<code>**not bold** &lt;b&gt;</code>"
    assert inline("2 * 3 * 4 and a*b") == "2 * 3 * 4 and a*b"
    assert inline("*a* **b** `c`") == "<em>a</em> <strong>b</strong> <code>c</code>"


def test_best_and_unresolved_cells_are_marked(page: tuple[str, dict[Path, bytes]]) -> None:
    text, _ = page
    cells = [attrs for tag, attrs in parse(text).tags if tag == "td"]
    best = [c for c in cells if "best" in classes(c)]
    unresolved = [c for c in cells if "unresolved" in classes(c)]
    assert len(best) == 1 + 6 and len(unresolved) == 1 + 12
    assert "<strong>0.0123 ±\u00a00.001</strong>" in text  # no break after ±
    assert "0.0131 ±\u00a00.002<span" in text and text.count("†</span>") == len(unresolved)
    # Legends under the two marked tables only, not under the plain one.
    assert text.count(LEGEND) == 2
    assert 'class="tie"' not in text and "tied with" not in text


def test_table_notes_follow_the_legend(page: tuple[str, dict[Path, bytes]]) -> None:
    text, _ = page
    note = (
        '<ul class="notes"><li>† MSE ↓ (best <strong>vae</strong>; variant − vae): dae +0.0008 '
        "(95% CI −0.0004 to 0.0020)</li></ul>"
    )
    assert note in text
    assert text.index(LEGEND) < text.index(note) < text.index("Robustness over twelve")


def test_tables_scroll_and_align_numbers(page: tuple[str, dict[Path, bytes]]) -> None:
    text, _ = page
    tags = parse(text).tags
    wraps = [a for t, a in tags if t == "div" and "table-wrap" in classes(a)]
    assert len(wraps) == text.count("<table>") == 3
    assert ".table-wrap { overflow-x: auto" in text and "tabular-nums" in text
    numeric = [a for t, a in tags if t in {"td", "th"} and "num" in classes(a)]
    assert len(numeric) == (2 + 2 * 3) + (12 + 12 * 3) + (1 + 1)  # not "variant", "encoder"


def test_headings_have_unique_ids_and_a_contents_box(page: tuple[str, dict[Path, bytes]]) -> None:
    text, _ = page
    tags = parse(text).tags
    ids = [a["id"] for t, a in tags if t in {"h1", "h2", "h3"} and "id" in a]
    assert len(ids) == len(set(ids))
    assert {"mnist", "mnist-2", "glossary"} <= set(ids)
    links = [a["href"] for t, a in tags if t == "a"]
    assert links == ["#mnist", "#mnist-2", "#glossary"]
    assert text.index('class="toc"') < text.index('id="mnist"')
    assert text.index("<h1") < text.index('class="toc"')
    assert slugify("`recon`: reconstructions **x**", set()) == "recon-reconstructions-x"


def test_warning_is_a_call_out(page: tuple[str, dict[Path, bytes]]) -> None:
    text, _ = page
    assert '<div class="callout" role="note"><p><strong>Warning: evaluator' in text
    assert text.count('class="callout"') == 1


def test_missing_figure_is_an_error(tmp_path: Path) -> None:
    doc = Document().add(Heading(1, "x"), Figure(Path("figures/gone.png"), "lost"))
    with pytest.raises(FileNotFoundError, match=r"figures/gone\.png"):
        render_html(doc, tmp_path)


def test_non_png_figure_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "plot.png").write_text("not a png")
    with pytest.raises(ValueError, match="not a PNG"):
        render_html(Document().add(Figure(Path("plot.png"), "x")), tmp_path)


def test_write_html_is_atomic_and_utf8(tmp_path: Path) -> None:
    doc, _ = demo_document(tmp_path)
    out = tmp_path / "site" / "index.html"
    write_html(doc, tmp_path, out)
    assert out.read_bytes().decode("utf-8") == render_html(doc, tmp_path)
    assert sorted(p.name for p in out.parent.iterdir()) == ["index.html"]
    before = out.read_bytes()
    with pytest.raises(FileNotFoundError):
        write_html(Document().add(Figure(Path("gone.png"), "x")), tmp_path, out)
    assert out.read_bytes() == before
