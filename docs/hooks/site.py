"""MkDocs hook of the documentation site (mkdocs.yml ``hooks:``): the pages that come from the code.

Nothing here is written by hand twice, so nothing here can go stale:

* **API reference**: one page per public module of ``spikedyn`` (every module that
  ``pkgutil.walk_packages`` finds, less ``_private`` ones and ``__main__``), each rendered from
  its docstrings by mkdocstrings, under ``api/spikedyn/...``, and the nav for them.  A new module
  gets its page without any edit here.
* **Benchmarks**: ``benchmarks/README.md`` and the committed result files under
  ``benchmarks/results/`` (reports, figures, JSON; not the per-epoch logs) are served from where
  they are, as ``benchmarks/index.md`` and ``benchmarks/results/...``.
* **Generated tables** in hand-written pages, at an HTML comment marker:
  ``<!-- spikedyn:datasets files -->`` and ``<!-- spikedyn:datasets about -->`` (the data-set
  registry: the files each loader reads, where to get them, from the loaders' own missing-file
  messages; what each one is and its options) and
  ``<!-- spikedyn:tables PREFIX -->`` (the ``spikedyn reproduce`` tables whose names start with
  PREFIX, with links to their committed results).
"""

from __future__ import annotations

import ast
import html
import importlib
import importlib.util
import inspect
import pkgutil
import re
import tempfile
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results"
RESULT_SUFFIXES = {".md", ".png", ".json", ".svg"}
API_NAV_TITLE = "API reference"
BENCH_NAV_TITLE = "Benchmarks"


# -- public modules -----------------------------------------------------------------------------
def public_modules() -> list[tuple[str, bool]]:
    """``(module name, is package)`` of spikedyn and every public submodule, sorted by name."""
    import spikedyn

    found = [("spikedyn", True)]

    def fail(name: str) -> None:
        raise ImportError(f"cannot import {name} while listing spikedyn's modules for the API reference")

    for info in pkgutil.walk_packages(spikedyn.__path__, "spikedyn.", onerror=fail):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue  # _private modules and __main__
        found.append((info.name, info.ispkg))
    return sorted(found)


def api_path(module: str, is_package: bool) -> str:
    """Docs path of a module's page: ``api/spikedyn/neurons/index.md``, ``api/spikedyn/neurons/lif.md``."""
    parts = module.split(".")
    return "/".join(["api", *parts, "index.md"]) if is_package else "/".join(["api", *parts]) + ".md"


def module_docstring(module: str) -> str:
    """The module's docstring; read from its source when importing it needs an optional package that is
    missing (``spikedyn.kernels.triton_neurons`` imports Triton)."""
    try:
        return inspect.getdoc(importlib.import_module(module)) or ""
    except ModuleNotFoundError:
        spec = importlib.util.find_spec(module)
        tree = ast.parse(Path(spec.origin).read_text())
        return inspect.cleandoc(ast.get_docstring(tree) or "")


def summary(module: str) -> str:
    doc = module_docstring(module)
    first = doc.strip().split("\n\n")[0].replace("\n", " ")
    return re.sub(r":(?:py:)?\w+:`~?\.?([^`]+)`", r"``\1``", first)


def api_page(module: str, is_package: bool, modules: list[tuple[str, bool]]) -> str:
    lines = [f"---\ntitle: {module}\n---\n", f"::: {module}\n"]
    children = [(m, p) for m, p in modules if m.rsplit(".", 1)[0] == module and m != module]
    if is_package and children:
        here = api_path(module, True)
        lines.append("## Modules\n")
        lines.append("| module | summary |\n|---|---|")
        for child, child_pkg in children:
            link = _relative(here, api_path(child, child_pkg))
            lines.append(f"| [`{child}`]({link}) | {_cell(summary(child))} |")
        lines.append("")
    return "\n".join(lines)


def api_nav(modules: list[tuple[str, bool]]) -> list:
    """Nested nav: a section per package (its page first), a page per module, short titles."""

    def entries(package: str) -> list:
        out: list = []
        for name, is_pkg in modules:
            if name.rsplit(".", 1)[0] != package or name == package:
                continue
            short = name.rsplit(".", 1)[1]
            out.append({short: [api_path(name, True), *entries(name)]} if is_pkg else {short: api_path(name, False)})
        return out

    return [api_path("spikedyn", True), *entries("spikedyn")]


# -- benchmarks -----------------------------------------------------------------------------------
def result_files() -> list[Path]:
    """Committed result files served by the site: everything under benchmarks/results but logs/."""
    return sorted(
        p for p in RESULTS.rglob("*")
        if p.is_file() and p.suffix in RESULT_SUFFIXES and "logs" not in p.relative_to(RESULTS).parts
    )


def bench_nav() -> list:
    pages = [p for p in result_files() if p.suffix == ".md"]
    return [
        "benchmarks/index.md",
        *({str(p.relative_to(RESULTS).with_suffix("")): f"benchmarks/results/{p.relative_to(RESULTS).as_posix()}"}
          for p in pages),
    ]


# -- generated tables -----------------------------------------------------------------------------
def _cell(text: str) -> str:
    """Text for a Markdown table cell: pipes escaped, except inside code spans (where Python-Markdown
    does not split on them, and an escape would show)."""
    text, out, pos = text.replace("\n", " "), [], 0
    for span in re.finditer(r"(`+).+?\1", text):
        out += [text[pos:span.start()].replace("|", "\\|"), span.group(0)]
        pos = span.end()
    return "".join(out) + text[pos:].replace("|", "\\|")


def _links(text: str) -> str:
    return re.sub(r"(https?://[^\s,;)]+)", r"<\1>", html.escape(text, quote=False))


def _relative(src: str, dest: str) -> str:
    import posixpath

    return posixpath.relpath(dest, posixpath.dirname(src))


def dataset_rows() -> list[dict[str, str]]:
    """One entry per registered data set, from the loader itself: it is asked to load from an empty
    folder, and its missing-file message says which files it expects and where to get them."""
    from spikedyn.data import DataFileError, dataset_names, load_dataset
    from spikedyn.data.base import _LOADERS  # the registry; loaders have no public accessor

    rows = []
    with tempfile.TemporaryDirectory() as empty:
        for name in dataset_names():
            loader = _LOADERS[name]
            doc = inspect.getdoc(loader) or inspect.getdoc(inspect.getmodule(loader)) or ""
            options = [p for p in inspect.signature(loader).parameters if p not in ("root", "progress")]
            try:
                loaded = load_dataset(name, empty, progress=False)
            except DataFileError as error:
                message = str(error).replace(empty + "/", "").replace(empty, ".")
                obtain = re.search(r"Obtain it from: (.*)", message).group(1).strip()
                layout = re.search(r"Put it here: +(.*)", message).group(1).strip()
                files, source = f"`{layout}`", _links(obtain)
            else:
                files, source = "none", html.escape(loaded.source or "bundled")
            rows.append({
                "name": f"`{name}`",
                "module": f"[`{loader.__module__}`][{loader.__module__}]",
                "what": doc.split("\n\n")[0].replace("\n", " "),
                "files": files,
                "source": source,
                "options": ", ".join(f"`{o}`" for o in options) or "none",
            })
    return rows


def datasets_table(which: str) -> str:
    """``files``: name, files under the data root, where to get them; ``about``: what each loader
    reads (its docstring's first paragraph), its module and its options."""
    columns = {
        "files": (("name", "name"), ("files under the data root", "files"), ("where to get them", "source")),
        "about": (("name", "name"), ("what it is", "what"), ("options (`--data-option`)", "options"), ("reader", "module")),
    }[which]
    out = ["| " + " | ".join(title for title, _ in columns) + " |", "|" + "---|" * len(columns)]
    for row in dataset_rows():
        out.append("| " + " | ".join(_cell(row[key]) for _, key in columns) + " |")
    return "\n".join(out)


def reproduce_tables(prefix: str, page: str) -> str:
    """The ``spikedyn reproduce`` tables named ``PREFIX-...``, with their committed results."""
    from spikedyn.reproduce import TABLES

    out = ["| table | what it reproduces | tasks (data set) | columns | our default | committed results |",
           "|---|---|---|---|---|---|"]
    names = sorted(n for n in TABLES if n.startswith(prefix + "-"))
    if not names:
        raise ValueError(f"no reproduce table starts with {prefix!r}")
    for name in names:
        t = TABLES[name]
        tasks: dict[str, str] = {}
        for r in t.rows:
            tasks.setdefault(r.group, r.dataset)
        results = sorted((p for p in result_files() if p.stem.startswith(name) and p.suffix == ".md"),
                         key=lambda p: (len(p.relative_to(RESULTS).parts), p))
        links = ", ".join(
            f"[{p.relative_to(RESULTS).as_posix()}]({_relative(page, 'benchmarks/results/' + p.relative_to(RESULTS).as_posix())})"
            for p in results
        ) or "none committed yet"
        out.append(
            f"| `{name}` | {_cell(t.title)} | {_cell(', '.join(f'{k} (`{v}`)' for k, v in tasks.items()))} | "
            f"{_cell(', '.join(t.column_names))} | {t.epochs} epochs, first seed {t.first_seed} | {links} |"
        )
    return "\n".join(out)


# -- MkDocs events --------------------------------------------------------------------------------
def on_config(config: MkDocsConfig) -> MkDocsConfig:
    """Expand the nav entries ``API reference`` and ``Benchmarks`` into the generated pages."""
    modules = public_modules()
    for i, entry in enumerate(config.nav or []):
        if isinstance(entry, dict) and API_NAV_TITLE in entry:
            config.nav[i] = {API_NAV_TITLE: api_nav(modules)}
        elif isinstance(entry, dict) and BENCH_NAV_TITLE in entry:
            config.nav[i] = {BENCH_NAV_TITLE: bench_nav()}
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    modules = public_modules()
    for module, is_pkg in modules:
        files.append(File.generated(config, api_path(module, is_pkg), content=api_page(module, is_pkg, modules)))
    files.append(File.generated(config, "benchmarks/index.md", abs_src_path=str(REPO / "benchmarks" / "README.md")))
    for path in result_files():
        files.append(File.generated(config, f"benchmarks/results/{path.relative_to(RESULTS).as_posix()}",
                                    abs_src_path=str(path)))
    return files


MARKER = re.compile(r"^<!-- spikedyn:(datasets|tables) ([\w-]+) -->$", re.M)  # alone on its line


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    def expand(match: re.Match) -> str:
        if match.group(1) == "datasets":
            return datasets_table(match.group(2))
        return reproduce_tables(match.group(2), page.file.src_uri)

    return MARKER.sub(expand, markdown)
