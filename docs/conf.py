"""Sphinx configuration of django-pagecall's documentation (Markdown pages read by MyST-Parser).

sphinx-build -W --keep-going -b html docs docs/_build/html   # or: bash scripts/docs.sh
"""

from __future__ import annotations

project = "django-pagecall"
author = "django-pagecall developers"
copyright = "django-pagecall developers"

extensions = ["myst_parser"]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# The pages link to each other's headings (``webhooks.md#reconciliation``): MyST makes anchors
# for headings down to level 3.
myst_heading_anchors = 3

html_theme = "furo"
html_title = "django-pagecall"
