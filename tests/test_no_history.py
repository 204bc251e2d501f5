"""Code and docs say what the code does, not how it came to be: no issue numbers, dated notes or
phrases of history. The changelog's release headings are the one place for dates.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCANNED = ["django_pagecall", "docs", "benchmarks", "example_project", "README.md", "CHANGELOG.md"]
SUFFIXES = {".py", ".md", ".html", ".txt", ".js", ".css", ".sh", ".toml", ".cfg"}
#: Generated or third-party text: the migration (makemigrations dates it) and Pagecall's spec.
SKIPPED = {"django_pagecall/migrations", "django_pagecall/emulator/openapi3.json", "docs/_build"}

MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
#: Each pattern, and why it means history. Case-insensitive unless it says otherwise.
PATTERNS = {
    "an issue or pull request number": r"\b(?:issue|bug|ticket|pull request|PR)\s*#?\d+\b",
    # `#12` in prose; not a colour (`#222;`, `"#205493"`, `color: #667`) nor an HTML entity.
    "a `#number` reference": r"(?:^|(?<=[\s(\[`]))(?<!:\s)#[1-9]\d{0,4}\b(?![;}\w])",
    # A calendar date; `2025-01-01T09:00:00Z` in an example payload is data, not a note.
    "a date": rf"\b20\d\d-[01]\d-[0-3]\d\b(?!T)|\b(?:{MONTHS})\s+(?:[0-3]?\d,?\s+)?20\d\d\b",
    "a migration of the past": r"\b(?:before|after) (?:the )?migration\b",
    "what we did": r"\bwe (?:changed|now|fixed|added|removed|switched|rewrote|replaced|moved)\b",
    "what was so before": r"\b(?:previously|formerly|in the past|anymore)\b",
    # "is used to make" describes a use; "used to make" alone tells of the past.
    "what it used to do": r"(?<!\bis )(?<!\bare )(?<!\bbe )(?<!\bbeen )\bused to (?:be|do|have|send|return|raise|run|work|need|take|store|"
    r"keep|call|write|read|show|accept|require|live|go|make|use|fail|hang)\b",
    # "no longer exists" names the state of a deleted row, not a change to the code.
    "what it does no more": r"\bno longer\b(?! exists?\b)",
    "a before and after": r"\b(?:before|after) (?:this|the) (?:change|fix|rewrite|refactor)\b",
}
COMPILED = {why: re.compile(pattern, re.I) for why, pattern in PATTERNS.items()}
#: The changelog's release headings carry dates by design (`## [0.1.0] - 2027-01-15`).
RELEASE_HEADING = re.compile(r"^## \[\d+\.\d+\.\d+\] - \d{4}-\d{2}-\d{2}$")


def scanned_files() -> list[Path]:
    files = []
    for name in SCANNED:
        path = ROOT / name
        candidates = [path] if path.is_file() else sorted(path.rglob("*"))
        for candidate in candidates:
            relative = candidate.relative_to(ROOT).as_posix()
            if any(relative == s or relative.startswith(s + "/") for s in SKIPPED):
                continue
            if candidate.is_file() and candidate.suffix in SUFFIXES | {".json"}:
                files.append(candidate)
    return files


def findings(text: str, *, changelog: bool = False) -> list[str]:
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if changelog and RELEASE_HEADING.match(line):
            continue
        for why, pattern in COMPILED.items():
            match = pattern.search(line)
            if match:
                found.append(f"{number}: {why}: {match.group(0)!r} in {line.strip()[:120]!r}")
    return found


def test_code_and_docs_tell_no_history() -> None:
    files = scanned_files()
    assert any(f.name == "README.md" for f in files)
    assert any(f.suffix == ".py" for f in files)
    problems = []
    for path in files:
        for finding in findings(path.read_text(), changelog=path.name == "CHANGELOG.md"):
            problems.append(f"{path.relative_to(ROOT)}:{finding}")
    assert problems == [], "say what the code does now:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "text",
    [
        "Fixed in issue 12.",
        "See #12 for the discussion.",
        "(PR #340)",
        "Measured on 2026-12-04 on the shared machine.",
        "Measured in December 2026.",
        "Before migration the table was scanned.",
        "We changed the claim to a compare-and-set.",
        "The sweep previously ran through the broker.",
        "The view used to send 500 here.",
        "The admin no longer shows the token.",
        "After this change the list is fast.",
    ],
)
def test_history_is_caught(text: str) -> None:
    assert findings(text)


@pytest.mark.parametrize(
    "text",
    [
        'SyncState.CREATING: "#205493",',
        "  body { color: #222; background: #f6f7f9; }",
        "h1{margin:0}.card{box-shadow:0 1px 3px #0003}",
        '"timestamp": "2025-01-01T09:00:00.000Z"',
        'delivery.error = f"room {room_pk} no longer exists"',
        "The key is used to sign new rooms.",
        "The function is used to make the link.",
        "## [0.1.0] - 2027-01-15",
        "Run the migration before the deploy.",
        "# A comment, then code  # noqa: S603",
    ],
)
def test_present_tense_text_passes(text: str) -> None:
    assert findings(text, changelog=True) == []


def test_module_docstrings_are_five_lines_at_most() -> None:
    """Explanations belong in docs/: a module says what it is in a few lines."""
    import ast

    folders = ("django_pagecall", "benchmarks", "example_project", "scripts", "tests")
    paths = [path for folder in folders for path in sorted((ROOT / folder).rglob("*.py"))]
    long = []
    for path in [*paths, ROOT / "noxfile.py"]:
        docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        if docstring and len(docstring.splitlines()) > 5:
            long.append(f"{path.relative_to(ROOT)}: {len(docstring.splitlines())} lines")
    assert long == []
