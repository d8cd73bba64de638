"""Griffe extension of the documentation site: spikedyn's reStructuredText-ish docstrings as Markdown.

The docstrings are written for ``help()`` and the terminal: ``double backticks`` (already code in
Markdown), Sphinx roles such as :class:`~spikedyn.layers.SpikeTap` and ``::`` literal blocks.  This
extension rewrites, for rendering only (the source is not touched):

* a role ``:class:`X```, ``:func:``, ``:meth:``, ``:mod:``, ``:data:``, ... into a cross-reference to
  ``X``'s page when ``X`` resolves, from the docstring's own scope, to a public spikedyn object
  (the API reference renders them all), and into plain code otherwise; ``~`` shows only the
  last name, a leading ``.`` is relative to the enclosing package, as in Sphinx;
* a paragraph ending in ``::`` followed by an indented block into the paragraph (ending in ``:``)
  and a fenced code block; a bare ``::`` line is dropped;
* a doctest block (lines from ``>>>`` to the next blank line) into a fenced code block;
* a reST simple table (from its ``====  ===`` border to the next blank line) into a Markdown table.

Loaded by mkdocstrings' ``extensions`` option in mkdocs.yml.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(class|func|meth|mod|attr|data|obj|exc|const|ref|term):`([^`]+)`")
SIMPLE_TABLE_BORDER = re.compile(r"^\s*=+( +=+)+\s*$")  # "=====  ====": a reST simple table's border
PRIVATE = re.compile(r"^_[^_]")  # mkdocstrings' default filter: dunders are shown, _private is not


def _display(target: str) -> str:
    return target.rsplit(".", 1)[-1] if target.startswith("~") else target.lstrip(".")


class RstDocstrings(griffe.Extension):
    """Rewrite roles and literal blocks of every docstring of a loaded package (see the module docstring)."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        self.collection = pkg.modules_collection
        self._walk(pkg, seen=set())

    # -- traversal -------------------------------------------------------------------------------
    def _walk(self, obj: griffe.Object, seen: set[str]) -> None:
        if obj.path in seen:
            return
        seen.add(obj.path)
        if obj.docstring is not None:
            obj.docstring.value = self.rewrite(obj.docstring.value, obj)
        for member in obj.members.values():
            if member.is_alias:
                continue
            self._walk(member, seen)

    # -- rewriting -------------------------------------------------------------------------------
    def rewrite(self, text: str, scope: griffe.Object) -> str:
        text = literal_blocks(text)
        parts = re.split(r"(```.*?```)", text, flags=re.S)  # leave code blocks alone
        for i in range(0, len(parts), 2):
            parts[i] = ROLE.sub(lambda m: self._role(m.group(1), m.group(2), scope), parts[i])
        return "".join(parts)

    def _role(self, role: str, target: str, scope: griffe.Object) -> str:
        shown = _display(target)
        path = self.resolve(target.lstrip("~"), scope)
        return f"[`{shown}`][{path}]" if path else f"`{shown}`"

    def resolve(self, target: str, scope: griffe.Object) -> str | None:
        """The canonical path of ``target`` seen from ``scope`` when the site renders it, else None."""
        module = scope if scope.is_module else scope.module
        if target.startswith("."):
            dots = len(target) - len(target.lstrip("."))
            package = module if module.is_init_module else module.parent
            for _ in range(dots - 1):
                package = package.parent if package is not None else None
            if package is None:
                return None
            candidates = [f"{package.path}.{target.lstrip('.')}"]
        else:
            candidates = [target]
            head, _, rest = target.partition(".")
            try:
                resolved = scope.resolve(head)
            except Exception:  # noqa: BLE001  (griffe raises NameResolutionError and friends)
                resolved = None
            if resolved:
                candidates.insert(0, f"{resolved}.{rest}" if rest else resolved)
        for candidate in candidates:
            obj = self._lookup(candidate)
            if obj is not None:
                return self._rendered(obj)
        return None

    def _lookup(self, path: str) -> griffe.Object | griffe.Alias | None:
        try:
            return self.collection.get_member(path)
        except Exception:  # noqa: BLE001  (KeyError, AliasResolutionError, ...)
            return None

    @staticmethod
    def _rendered(obj: griffe.Object | griffe.Alias) -> str | None:
        """Path of the page anchor of ``obj`` when it is spikedyn's and public all the way down, else None
        (mkdocs.yml renders every public object, documented or not: ``show_if_no_docstring``)."""
        try:
            target = obj.final_target if obj.is_alias else obj
            path = target.path
        except Exception:  # noqa: BLE001  (an alias to something not loaded: torch, numpy, ...)
            return None
        if not path.startswith("spikedyn") or any(PRIVATE.match(part) for part in path.split(".")):
            return None
        return path


def literal_blocks(text: str) -> str:
    """``para::`` + indented block -> ``para:`` + fenced block (reST literal blocks as Markdown)."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.rstrip().endswith("::") and not line.lstrip().startswith(">>>"):
            indent = len(line) - len(line.lstrip())
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            block_end = j
            while block_end < len(lines) and (
                not lines[block_end].strip() or len(lines[block_end]) - len(lines[block_end].lstrip()) > indent
            ):
                block_end += 1
            while block_end > j and not lines[block_end - 1].strip():
                block_end -= 1
            if block_end > j:  # there is an indented block: it is code
                head = line.rstrip()[:-2].rstrip()
                if head.strip():
                    out.append(head + ":")
                    out.append("")
                pad = " " * indent
                out.append(pad + "```text")
                out.extend(pad + row if row.strip() else "" for row in textwrap.dedent("\n".join(lines[j:block_end])).splitlines())
                out.append(pad + "```")
                i = block_end
                continue
        if SIMPLE_TABLE_BORDER.match(line):  # a reST simple table: up to the next blank line
            j = i
            while j < len(lines) and lines[j].strip():
                j += 1
            out.extend(simple_table(lines[i:j]))
            i = j
            continue
        if line.lstrip().startswith(">>>"):  # a doctest block: up to the next blank line
            indent = len(line) - len(line.lstrip())
            j = i
            while j < len(lines) and lines[j].strip():
                j += 1
            pad = " " * indent
            out.append(pad + "```pycon")
            out.extend(pad + row for row in textwrap.dedent("\n".join(lines[i:j])).splitlines())
            out.append(pad + "```")
            i = j
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


def simple_table(block: list[str]) -> list[str]:
    """A reST simple table (``====  ===`` borders, the header between the first two) as a Markdown
    table; a line whose first column is empty continues the row above."""
    indent = len(block[0]) - len(block[0].lstrip())
    spans = [(m.start(), m.end()) for m in re.finditer(r"=+", block[0])]
    borders = [k for k, row in enumerate(block) if SIMPLE_TABLE_BORDER.match(row)]
    header_end = borders[1] if len(borders) >= 3 else None
    header: list[str] = []
    rows: list[list[str]] = []
    for k, row in enumerate(block):
        if k in borders:
            continue
        cells = [row[a:b if n < len(spans) - 1 else None].strip() for n, (a, b) in enumerate(spans)]
        target = header if header_end is not None and k < header_end else None
        if target is not None:
            header = [f"{h} {c}".strip() for h, c in zip(header, cells)] if header else cells
        elif rows and not cells[0]:
            rows[-1] = [f"{r} {c}".strip() for r, c in zip(rows[-1], cells)]
        else:
            rows.append(cells)
    if not header:
        header, rows = rows[0], rows[1:]
    pad = " " * indent
    line = lambda cells: pad + "| " + " | ".join(_escape_pipes(c) for c in cells) + " |"  # noqa: E731
    return ["", line(header), pad + "|" + "---|" * len(header), *(line(r) for r in rows), ""]


def _escape_pipes(text: str) -> str:
    """Escape ``|`` for a Markdown table cell, except inside code spans (where it needs none)."""
    out, pos = [], 0
    for span in re.finditer(r"(`+).+?\1", text):
        out += [text[pos:span.start()].replace("|", "\\|"), span.group(0)]
        pos = span.end()
    return "".join(out) + text[pos:].replace("|", "\\|")
