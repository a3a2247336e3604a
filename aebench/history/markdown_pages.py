"""The README and docs/ as HTML pages of the published site.

Markdown from the published commit, rendered by markdown-it (CommonMark plus tables, headings
anchored GitHub-style so ``page.md#section`` links keep working). A relative link to another
published page becomes a link to its HTML page; an image becomes a data URI (the pages load
nothing from elsewhere); a link to any other repository file (code, params.yaml) has no page on
the site, so it stays as its text, and an outside address is shown, not linked.
"""

from __future__ import annotations

import base64
import posixpath
import re
from collections.abc import Callable
from html import escape

from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.anchors import anchors_plugin

IMAGE_TYPES = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg"}
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, mailto:, data:, ...


def github_slug(title: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", title.strip().lower())
    return text.replace(" ", "-")


def markdown_parser() -> MarkdownIt:
    parser = MarkdownIt("commonmark", {"html": False}).enable("table")
    return parser.use(anchors_plugin, min_level=1, max_level=6, slug_func=github_slug)


def relative_url(from_page: str, to_page: str) -> str:
    """The relative URL from one site path to another (both relative to the site root)."""
    return posixpath.relpath(to_page, posixpath.dirname(from_page) or ".")


def render_markdown_page(
    text: str,
    source: str,
    page: str,
    site_path_of: Callable[[str], str | None],
    read_file: Callable[[str], bytes | None],
) -> str:
    """The HTML body of one Markdown file.

    ``source``: its repository path; ``page``: its site path; ``site_path_of``: a repository path's
    page on the site (None where it has none); ``read_file``: a repository file's bytes (images).
    """
    parser = markdown_parser()
    tokens = parser.parse(text)
    for token in tokens:
        _rewrite_inline(token.children or [], source, page, site_path_of, read_file)
    renderer = parser.renderer

    def keep_or_drop(tokens: list[Token], idx: int, options, env) -> str:
        token = tokens[idx]
        if token.meta.get("drop"):
            url = token.meta.get("url")
            return f" (<code>{escape(url)}</code>)" if url and token.type == "link_close" else ""
        return renderer.renderToken(tokens, idx, options, env)

    renderer.rules["link_open"] = keep_or_drop
    renderer.rules["link_close"] = keep_or_drop
    return renderer.render(tokens, parser.options, {})


def _rewrite_inline(children: list[Token], source: str, page: str, site_path_of, read_file) -> None:
    """Point each link and image of one inline run at the site; a link to a file without a page
    is marked, with its closing token, to render as its text alone."""
    open_links: list[Token] = []
    for token in children:
        if token.type == "link_open":
            token.meta["drop"] = not _relink(token, source, page, site_path_of)
            open_links.append(token)
        elif token.type == "link_close" and open_links:
            opening = open_links.pop()
            token.meta["drop"] = opening.meta["drop"]
            token.meta["url"] = opening.meta.get("url")
        elif token.type == "image":
            _embed(token, source, read_file)


def _repo_path(source: str, target: str) -> tuple[str, str] | None:
    """``(repository path, anchor)`` of a relative link; None for an external or in-page one."""
    if not target or target.startswith("#") or EXTERNAL.match(target):
        return None
    path, _, anchor = target.partition("#")
    return posixpath.normpath(posixpath.join(posixpath.dirname(source), path)), anchor


def _relink(token: Token, source: str, page: str, site_path_of) -> bool:
    """Rewrite a link to its site page; False where the target has no page on the site."""
    target = str(token.attrGet("href") or "")
    if EXTERNAL.match(target):  # the site links nowhere else: the address stays, as text
        token.meta["url"] = target
        return False
    found = _repo_path(source, target)
    if found is None:
        return True
    repo_path, anchor = found
    site_page = site_path_of(repo_path)
    if site_page is None:
        return False
    token.attrSet("href", relative_url(page, site_page) + (f"#{anchor}" if anchor else ""))
    return True


def _embed(token: Token, source: str, read_file) -> None:
    """An image from the repository as a data URI: site pages load nothing from elsewhere."""
    found = _repo_path(source, str(token.attrGet("src") or ""))
    if found is None:
        return
    content = read_file(found[0])
    kind = IMAGE_TYPES.get(posixpath.splitext(found[0])[1].lower())
    if content is not None and kind is not None:
        token.attrSet("src", f"data:{kind};base64,{base64.b64encode(content).decode()}")
