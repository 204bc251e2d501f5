"""The README stays true to the code: its settings table is the one ``conf.KEYS`` makes."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def settings_table() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "settings_table", ROOT / "scripts" / "settings_table.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_settings_table_matches_conf_keys() -> None:
    table = settings_table()
    readme = (ROOT / "README.md").read_text()
    assert table.block() in readme, (
        "README.md's settings table is out of date: run `python scripts/settings_table.py --write`"
    )


def test_settings_table_lists_every_key() -> None:
    from django_pagecall.conf import KEYS

    rendered = settings_table().render()
    for key in KEYS:
        assert f"| `{key.name}` |" in rendered


def test_readme_opens_with_the_demo_and_the_tests() -> None:
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```sh\n", 1)[1].split("```", 1)[0]
    assert first_block.splitlines() == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    for script in ("demo.sh", "test.sh", "services.sh"):
        assert (ROOT / "scripts" / script).is_file()
