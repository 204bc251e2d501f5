"""The README and the docs stay true to the code: their settings tables are the one ``conf.KEYS``
makes."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

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


def test_docs_settings_table_matches_conf_keys() -> None:
    table = settings_table()
    page = (ROOT / "docs" / "settings.md").read_text()
    assert table.block() in page, (
        "docs/settings.md's settings table is out of date: "
        "run `python scripts/settings_table.py --write`"
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


def celery_settings_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Celery\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_readme_celery_settings_keep_sweeps_from_piling_up() -> None:
    namespace: dict[str, object] = {}
    exec(celery_settings_block(), namespace)  # noqa: S102 (the README's own example)
    schedule = namespace["CELERY_BEAT_SCHEDULE"]
    assert isinstance(schedule, dict)
    (entry,) = [e for e in schedule.values() if e["task"] == "django_pagecall.tasks.sync"]
    # A sweep queued while the previous one still runs expires instead of waiting its turn.
    assert 0 < entry["options"]["expires"] <= entry["schedule"]


def test_readme_visibility_timeout_is_above_every_countdown_a_task_is_retried_with(
    settings: Any,
) -> None:
    from django_pagecall.conf import pagecall_settings
    from django_pagecall.sync import lease_seconds, outcomes

    settings.PAGECALL = {"API_KEY": "k"}  # every other key at its default
    block = celery_settings_block()
    namespace: dict[str, object] = {}
    exec(block, namespace)  # noqa: S102
    options = namespace["CELERY_BROKER_TRANSPORT_OPTIONS"]
    assert isinstance(options, dict)
    longest_countdown = max(
        float(pagecall_settings.RETRY_BACKOFF_MAX),
        outcomes.AMBIGUOUS_GRACE,
        lease_seconds(),
    )
    assert options["visibility_timeout"] > longest_countdown
    # The comment that goes with it: the lines of comment just above it, and its own.
    lines = block.split("CELERY_BROKER_TRANSPORT_OPTIONS = {\n", 1)[1].splitlines()
    at = next(i for i, line in enumerate(lines) if line.lstrip().startswith('"visibility_timeout"'))
    above = []
    for line in reversed(lines[:at]):
        if not line.lstrip().startswith("#"):
            break
        above.append(line)
    comment = " ".join([*above, lines[at].partition("#")[2]])
    for name in ("RETRY_BACKOFF_MAX", "AMBIGUOUS_GRACE", "lease_seconds()"):
        assert name in comment, f"the visibility_timeout comment does not name {name}"
