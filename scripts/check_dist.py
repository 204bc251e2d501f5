"""Check the built sdist and wheel in DIR: the Korean catalogue compiled and as source, the
version, known classifiers and the README as long description; exits 1 naming every problem.

    python scripts/check_dist.py DIR    # after: python -m build --outdir DIR
"""

from __future__ import annotations

import sys
import tarfile
import tomllib
import zipfile
from email.parser import HeaderParser
from pathlib import Path

import trove_classifiers

ROOT = Path(__file__).resolve().parents[1]
CATALOGUES = [
    "django_pagecall/locale/ko/LC_MESSAGES/django.mo",
    "django_pagecall/locale/ko/LC_MESSAGES/django.po",
]


def only(directory: Path, pattern: str) -> Path:
    found = sorted(directory.glob(pattern))
    if len(found) != 1:
        sys.exit(f"check_dist: expected one {pattern} in {directory}, found {len(found)}")
    return found[0]


def problems(directory: Path) -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wheel, sdist = only(directory, "*.whl"), only(directory, "*.tar.gz")
    found = []
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = HeaderParser().parsestr(archive.read(metadata_name).decode())
        for catalogue in CATALOGUES:
            if catalogue not in names:
                found.append(f"{wheel.name} lacks {catalogue}")
            elif archive.read(catalogue) != (ROOT / catalogue).read_bytes():
                found.append(f"{wheel.name}'s {catalogue} differs from the checkout's")
    with tarfile.open(sdist) as archive:
        sdist_names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    found += [f"{sdist.name} lacks {c}" for c in CATALOGUES if c not in sdist_names]
    if metadata["Version"] != project["version"]:
        found.append(f"the wheel's version {metadata['Version']} is not {project['version']}")
    for classifier in metadata.get_all("Classifier") or []:
        if classifier not in trove_classifiers.classifiers:
            found.append(f"unknown classifier: {classifier}")
        elif classifier in trove_classifiers.deprecated_classifiers:
            found.append(f"deprecated classifier: {classifier}")
    if metadata["Description-Content-Type"] != "text/markdown":
        found.append("the long description is not declared as Markdown")
    if metadata.get_payload().strip() != (ROOT / "README.md").read_text().strip():
        found.append("the long description is not the README")
    return found


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    directory = Path(sys.argv[1])
    found = problems(directory)
    for problem in found:
        print(f"check_dist: {problem}", file=sys.stderr)
    if found:
        sys.exit(1)
    print(f"check_dist: {', '.join(sorted(p.name for p in directory.iterdir()))}: OK")
