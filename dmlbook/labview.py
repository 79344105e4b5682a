"""The chapters and workbook as JupyterLab shows them: the book's roles in words it renders.

JupyterLab renders MyST with jupyterlab-myst, which knows the directives the book
uses (exercise, solution, admonitions, dropdowns) and ``{term}``, but not the
Sphinx-side roles: ``{glue:*}`` (myst-nb), ``{numref}`` to a notebook figure,
``{doc}`` and ``{cite}``. A student would read their raw targets. The contents
manager here (JupyterLab's, with jupytext's) rewrites a notebook's Markdown
cells as it opens them:

- ``{glue:text}`name:fmt``` becomes ``{eval}`glued("name", "fmt")```: after Run
  All, jupyterlab-myst shows the value the kernel glued (:mod:`dmlbook.glued`);
  the ``{glue:math}`` directive and ``{glue:md}`` likewise;
- ``{numref}`fig-x``` becomes the figure's caption in words, ``{doc}`` a link
  to the page with its title, ``{cite}`key``` "(Author Year)";
- ``{literalinclude}`` (the workbook's reference solutions) becomes a Python
  code block with the included lines;

and undoes every rewrite when the notebook is saved, so the ``.md`` files on disk
keep the book's syntax. Enable it with
``--ServerApp.contents_manager_class=dmlbook.labview.StudentContentsManager``
(binder/jupyter_server_config.json, which binder/postBuild and ``make lab`` install).
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path
from urllib.parse import quote, unquote

ROOT = Path(__file__).resolve().parents[1]
GLUE_ROLE = re.compile(r"\{glue(?::(text|md))?\}`([^`]+)`")
GLUE_MATH = re.compile(r"^```\{glue:math\}[ \t]+(\S+)[ \t]*\n((?::[^\n]*\n)*)```[ \t]*$", re.M)
EVAL_GLUED = re.compile(r"\{eval\}`glued\(\"([^\"]+)\", \"([^\"]*)\", \"(text|md|math)\"\)`")
EVAL_MATH_BLOCK = re.compile(r"^<!-- glue:math (\S+) -->\n\{eval\}`glued\(\"\1\", \"\", "
                             r"\"math\"\)`$", re.M)
OTHER_ROLE = re.compile(r"\{(numref|doc|cite|cite:p|cite:t)\}`([^`]+)`")
# A rewritten role is a link whose target holds the original, quoted.
REWRITTEN = re.compile(r"\[([^\]]*)\]\(#myst-role:([^)\s]+)\)")
# The literalinclude directive (Sphinx reads the file; jupyterlab-myst cannot).
# ```{glue} name``` / ```{glue:} name``` / ```{glue:figure} name``` (with options and a
# caption): kept whole in a comment, with a line saying where the output is.
GLUE_BLOCK = re.compile(r"^```\{glue(?::|:figure)?\}[ \t]+(\S+)[^\n]*\n.*?^```[ \t]*$", re.M | re.S)
GLUE_BLOCK_BACK = re.compile(r"^<!-- myst-glue:(\S+) -->\n[^\n]*$", re.M)
INCLUDE = re.compile(r"^```\{literalinclude\}[ \t]+(\S+)[ \t]*\n((?::[^\n]*\n)*)```[ \t]*$", re.M)
INCLUDED = re.compile(r"^<!-- myst-directive:(\S+) -->\n```python\n.*?^```$", re.M | re.S)


def _glue_to_eval(match: re.Match) -> str:
    kind = match.group(1) or "text"
    name, _, fmt = match.group(2).partition(":") if kind == "text" else (match.group(2), "", "")
    return f'{{eval}}`glued("{name}", "{fmt}", "{kind}")`'


def _eval_to_glue(match: re.Match) -> str:
    name, fmt, kind = match.groups()
    if kind == "md":
        return f"{{glue:md}}`{name}`"
    return f"{{glue:text}}`{name}:{fmt}`" if fmt else f"{{glue:text}}`{name}`"


def _words(text: str, limit: int = 70) -> str:
    text = re.sub(r"\s+", " ", re.sub(r"[{}`*$\[\]]|\{[a-z:]+\}", "", text)).strip()
    first = re.split(r"(?<=[.:;])\s", text, maxsplit=1)[0].rstrip(".:;")
    return first if len(first) <= limit else first[:limit].rsplit(" ", 1)[0] + "…"


def figure_captions(cells) -> dict[str, str]:
    """``{figure name: caption}`` of a notebook's code cells (myst-nb's cell metadata)."""
    out = {}
    for cell in cells:
        figure = (cell.get("metadata", {}).get("mystnb") or {}).get("figure") or {}
        if isinstance(figure, dict) and figure.get("name"):
            out[figure["name"]] = str(figure.get("caption", ""))
    return out


def _title(doc: Path) -> str | None:
    try:
        for line in doc.read_text(encoding="utf-8").splitlines():
            if line.startswith("# "):
                return line[2:].strip()
    except OSError:
        return None
    return None


def _accents(name: str) -> str:
    """LaTeX accents (``Orm{\\'a}ndi``) as letters (Ormándi); braces dropped."""
    marks = {"'": "\u0301", "`": "\u0300", '"': "\u0308", "^": "\u0302", "~": "\u0303"}
    name = re.sub(r"\\([`'\"^~])\{?([A-Za-z])\}?",
                  lambda m: unicodedata.normalize("NFC", m.group(2) + marks[m.group(1)]), name)
    return re.sub(r"[{}]", "", name)


def bib_labels(bib: Path = ROOT / "references.bib") -> dict[str, str]:
    """``{key: "Author et al. Year"}`` from the book's BibTeX file."""
    labels = {}
    try:
        text = bib.read_text(encoding="utf-8")
    except OSError:
        return labels
    for entry in re.split(r"\n(?=@)", text):
        key = re.match(r"@\w+\{([^,\s]+),", entry.strip())
        author = re.search(r"author\s*=\s*[{\"](.+?)[}\"],?\s*\n", entry, re.S | re.I)
        year = re.search(r"year\s*=\s*[{\"]?(\d{4})", entry, re.I)
        if key and author and year:
            names = [n.strip() for n in re.split(r"\s+and\s+", author.group(1).replace("\n", " "))]
            last = [n.split(",")[0] if "," in n else n.split()[-1] for n in names if n]
            last = [_accents(n) for n in last]
            who = (last[0] if len(last) == 1 else f"{last[0]} and {last[1]}" if len(last) == 2
                   else f"{last[0]} et al.")
            labels[key.group(1)] = f"{who} {year.group(1)}"
    return labels


def _other_role(match: re.Match, captions: dict, folder: Path, bib: dict) -> str:
    role, target = match.groups()
    text = target
    if role == "numref":
        label = re.sub(r"^.*<(.+)>$", r"\1", target)
        caption = captions.get(label)
        text = f"the figure “{_words(caption)}”" if caption else "the figure below"
    elif role == "doc":
        explicit = re.match(r"^(.*?)\s*<(.+)>$", target)
        if explicit:
            text = explicit.group(1)
        else:
            text = _title((folder / target).with_suffix(".md")) or Path(target).name
    else:
        keys = [k.strip() for k in target.split(",")]
        text = "; ".join(bib.get(k, k) for k in keys)
        text = f"({text})" if role != "cite:t" else text
    return f"[{text}](#myst-role:{quote(match.group(0), safe='')})"


def _include(match: re.Match, folder: Path) -> str:
    """A literalinclude as a Python code block with the included lines."""
    import ast

    path = (folder / match.group(1)).resolve()
    options = dict(re.findall(r"^:(\w+):[ \t]*(.*)$", match.group(2), re.M))
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return match.group(0)
    lines = text.splitlines()
    if "pyobject" in options:
        node = next((n for n in ast.walk(ast.parse(text))
                     if getattr(n, "name", None) == options["pyobject"].strip()), None)
        if node is None:
            return match.group(0)
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        lines = lines[first - 1:node.end_lineno]
    if "lines" in options:
        low, _, high = options["lines"].partition("-")
        lines = lines[int(low) - 1:int(high or low)]
    code = "\n".join(lines)
    return f"<!-- myst-directive:{quote(match.group(0), safe='')} -->\n```python\n{code}\n```"


def to_lab(source: str, *, captions: dict | None = None, folder: Path = ROOT,
           bib: dict | None = None) -> str:
    """A Markdown cell's source as JupyterLab should render it."""
    source = GLUE_MATH.sub(lambda m: (f"<!-- glue:math {m.group(1)} -->\n"
                                      f'{{eval}}`glued("{m.group(1)}", "", "math")`'), source)
    source = GLUE_BLOCK.sub(lambda m: (
        f"<!-- myst-glue:{quote(m.group(0), safe='')} -->\n"
        f"*(The output “{m.group(1)}” is shown by the code cell that makes it; the book "
        f"places it here.)*"), source)
    source = GLUE_ROLE.sub(_glue_to_eval, source)
    source = INCLUDE.sub(lambda m: _include(m, folder), source)
    bib = bib_labels() if bib is None else bib
    return OTHER_ROLE.sub(lambda m: _other_role(m, captions or {}, folder, bib), source)


def to_book(source: str) -> str:
    """Undo :func:`to_lab`: the source in the book's syntax."""
    source = REWRITTEN.sub(lambda m: unquote(m.group(2)), source)
    source = INCLUDED.sub(lambda m: unquote(m.group(1)), source)
    source = GLUE_BLOCK_BACK.sub(lambda m: unquote(m.group(1)), source)
    source = EVAL_MATH_BLOCK.sub(lambda m: f"```{{glue:math}} {m.group(1)}\n```", source)
    return EVAL_GLUED.sub(_eval_to_glue, source)


def notebook_to_lab(nb: dict, folder: Path) -> dict:
    captions = figure_captions(nb.get("cells", []))
    bib = bib_labels()
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            cell["source"] = to_lab(_joined(cell["source"]), captions=captions, folder=folder,
                                    bib=bib)
    return nb


def notebook_to_book(nb: dict) -> dict:
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            cell["source"] = to_book(_joined(cell["source"]))
            cell.get("metadata", {}).pop("user_expressions", None)
    return nb


def _joined(source) -> str:
    return source if isinstance(source, str) else "".join(source)


def _book_page(path: str) -> bool:
    return path.endswith(".md") and path.split("/")[0] in {"chapters", "workbook"}


try:  # the server side: only where JupyterLab and jupytext are installed
    from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
    from jupytext.async_contentsmanager import build_async_jupytext_contents_manager_class

    _Base = build_async_jupytext_contents_manager_class(AsyncLargeFileManager)
except ImportError:  # pragma: no cover - a kernel without the server
    _Base = None

if _Base is not None:
    class StudentContentsManager(_Base):
        """jupytext's contents manager, with the book's roles rewritten for jupyterlab-myst."""

        async def get(self, path, content=True, type=None, format=None, **kwargs):
            model = await super().get(path, content=content, type=type, format=format,
                                      **kwargs)
            if (content and model.get("type") == "notebook" and _book_page(path.strip("/"))
                    and model.get("content") is not None):
                folder = Path(self.root_dir) / Path(path.strip("/")).parent
                notebook_to_lab(model["content"], folder)
            return model

        async def save(self, model, path=""):
            if model.get("type") == "notebook" and model.get("content") is not None \
                    and _book_page(path.strip("/")):
                model = {**model, "content": notebook_to_book(json.loads(json.dumps(
                    model["content"])))}
            return await super().save(model, path)
