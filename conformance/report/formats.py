"""Every file a report or a matrix is written as: one entry per format, with its suffix and its render function.

`report.write` walks these tables. Adding a format is one entry here and its render function in a module of its own;
a section that only some reports carry (the benchmark's figures) is added to the Markdown page here too, so that the
Markdown renderer knows no package that contributes one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

from ..bench.table import markdown_section as benchmark_section
from .html import render_html
from .ktap import render_ktap
from .markdown import render_markdown
from .matrix import matrix_document
from .matrix_html import render_matrix_html
from .matrix_markdown import render_matrix_markdown


@dataclass(frozen=True)
class Format:
    name: str  # what the command line prints before the path
    suffix: str
    render: Callable[[Any], str]


def json_text(document: Any) -> str:
    """A JSON document as the suite writes it: indented, UTF-8 where it can be (a lone surrogate from a crafted report
    cannot be; \\u escapes keep that exact string)."""
    text = json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(document, indent=2, ensure_ascii=True, allow_nan=False)
    return text + "\n"


# The Markdown page's sections after the cases, each shown only for a report that has something for it.
MARKDOWN_SECTIONS = (benchmark_section,)

# A report's files: <platform id><suffix>.
REPORT_FORMATS = (
    Format("json", ".json", lambda report: json_text(report.to_json())),
    Format("markdown", ".md", partial(render_markdown, sections=MARKDOWN_SECTIONS)),
    Format("html", ".html", render_html),
    Format("ktap", ".ktap", render_ktap),
)

# A matrix's files: matrix<suffix>.
MATRIX_FORMATS = (
    Format("markdown", ".md", render_matrix_markdown),
    Format("html", ".html", render_matrix_html),
    Format("json", ".json", lambda matrix: json_text(matrix_document(matrix))),
)
