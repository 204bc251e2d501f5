"""The README and the docs pages stay true to the code: generated tables, code examples that
compile and run, the quickstart's files as a working site, and the versions the package declares.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
CHANGELOG = ROOT / "CHANGELOG.md"

#: A fenced block, indented or not (blocks inside list items are indented).
FENCE = re.compile(
    r"^(?P<indent>[ ]*)```(?P<lang>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ ]*$", re.S | re.M
)


def code_blocks(path: Path, lang: str = "python") -> list[str]:
    blocks = []
    for match in FENCE.finditer(path.read_text()):
        if match["lang"].strip() == lang:
            indent = match["indent"]
            lines = match["body"].splitlines(keepends=True)
            blocks.append("".join(line.removeprefix(indent) for line in lines))
    return blocks


def pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def settings_table() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "settings_table", ROOT / "scripts" / "settings_table.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The settings table ------------------------------------------------------------------------


def test_docs_settings_table_matches_conf_keys() -> None:
    page = (DOCS / "settings.md").read_text()
    assert settings_table().block() in page, (
        "docs/settings.md's settings table is out of date: "
        "run `python scripts/settings_table.py --write`"
    )


def test_settings_table_lists_every_key() -> None:
    from django_pagecall.conf import KEYS

    rendered = settings_table().render()
    for key in KEYS:
        assert f"| `{key.name}` |" in rendered


def test_settings_table_write_replaces_the_table_between_the_markers(tmp_path: Path) -> None:
    table = settings_table()
    page = tmp_path / "settings.md"
    page.write_text(f"before\n{table.START}\n| stale |\n{table.END}\nafter\n")
    table.write(page)
    assert page.read_text() == f"before\n{table.block()}\nafter\n"


# The README ---------------------------------------------------------------------------------


def test_readme_opens_with_the_demo_and_the_tests() -> None:
    first_block = README.read_text().split("```sh\n", 1)[1].split("```", 1)[0]
    assert first_block.splitlines() == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    for script in ("demo.sh", "test.sh", "services.sh"):
        assert (ROOT / "scripts" / script).is_file()


def test_readme_fits_on_one_screen() -> None:
    # The details live in docs/; the README is what a newcomer reads first.
    assert len(README.read_text().splitlines()) <= 90


def test_readme_installation_snippet_has_every_step() -> None:
    (snippet,) = code_blocks(README)
    compile(snippet, "README.md", "exec")
    for line in (
        'INSTALLED_APPS += ["rest_framework", "django_pagecall"]',
        "from django.urls import include, path",
        'path("pagecall/", include("django_pagecall.urls"))',
        '"API_KEY":',
        '"WEBHOOK_URL":',
        'app.config_from_object("django.conf:settings", namespace="CELERY")',
        "app.autodiscover_tasks()",
    ):
        assert line in snippet, line
    # The Celery bootstrap is the quickstart's, word for word.
    for name in ("mysite/celery.py", "mysite/__init__.py"):
        body = quickstart_files()[name].split("\n", 1)[1]
        assert body in snippet, name


def test_readme_links_point_at_files_that_exist() -> None:
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text())
    local = [t for t in targets if "://" not in t]
    assert "docs/quickstart.md" in local
    for target in local:
        assert (ROOT / target).exists(), target


# Code examples ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [*pages(), README, CHANGELOG],
    ids=lambda p: p.relative_to(ROOT).as_posix(),
)
def test_every_python_block_compiles(path: Path) -> None:
    for block in code_blocks(path):
        compile(block, str(path), "exec")


def test_code_blocks_are_found_in_list_items() -> None:
    # docs/troubleshooting.md indents its examples under list items.
    blocks = code_blocks(DOCS / "troubleshooting.md")
    assert any(block.startswith("# mysite/__init__.py\n") for block in blocks)


# The Celery settings ------------------------------------------------------------------------


def celery_settings(path: Path) -> dict[str, Any]:
    """The ``CELERY_*`` names that the page's block with the beat schedule defines."""
    (block,) = [b for b in code_blocks(path) if "CELERY_BEAT_SCHEDULE" in b]
    namespace: dict[str, Any] = {}
    exec(block, namespace)  # noqa: S102 (the page's own example)
    return {k: v for k, v in namespace.items() if k.startswith("CELERY_")}


def celery_block() -> str:
    (block,) = [b for b in code_blocks(DOCS / "celery.md") if "CELERY_BEAT_SCHEDULE" in b]
    return block


def test_celery_settings_keep_sweeps_from_piling_up() -> None:
    schedule = celery_settings(DOCS / "celery.md")["CELERY_BEAT_SCHEDULE"]
    (entry,) = [e for e in schedule.values() if e["task"] == "django_pagecall.tasks.sync"]
    # A sweep queued while the previous one still runs expires instead of waiting its turn.
    assert 0 < entry["options"]["expires"] <= entry["schedule"]


def test_visibility_timeout_is_above_every_countdown_a_task_is_retried_with(
    settings: Any,
) -> None:
    from django_pagecall.conf import pagecall_settings
    from django_pagecall.sync import lease_seconds, outcomes

    settings.PAGECALL = {"API_KEY": "k"}  # every other key at its default
    options = celery_settings(DOCS / "celery.md")["CELERY_BROKER_TRANSPORT_OPTIONS"]
    longest_countdown = max(
        float(pagecall_settings.RETRY_BACKOFF_MAX),
        outcomes.AMBIGUOUS_GRACE,
        lease_seconds(),
    )
    assert options["visibility_timeout"] > longest_countdown
    # The comment that goes with it: the lines of comment just above it, and its own.
    lines = celery_block().split("CELERY_BROKER_TRANSPORT_OPTIONS = {\n", 1)[1].splitlines()
    at = next(i for i, line in enumerate(lines) if line.lstrip().startswith('"visibility_timeout"'))
    above = []
    for line in reversed(lines[:at]):
        if not line.lstrip().startswith("#"):
            break
        above.append(line)
    comment = " ".join([*above, lines[at].partition("#")[2]])
    for name in ("RETRY_BACKOFF_MAX", "AMBIGUOUS_GRACE", "lease_seconds()"):
        assert name in comment, f"the visibility_timeout comment does not name {name}"


def test_quickstart_celery_settings_are_the_celery_pages() -> None:
    assert celery_settings(DOCS / "quickstart.md") == celery_settings(DOCS / "celery.md")


# The quickstart as a site -------------------------------------------------------------------

#: The quickstart's files: each block that starts with a ``# mysite/...`` comment.
QUICKSTART_FILES = {
    "mysite/settings.py",
    "mysite/urls.py",
    "mysite/celery.py",
    "mysite/__init__.py",
}


def quickstart_files() -> dict[str, str]:
    files = {}
    for block in code_blocks(DOCS / "quickstart.md"):
        first = block.split("\n", 1)[0]
        if first.startswith("# mysite/"):
            files[first.removeprefix("# ")] = block
    return files


def test_quickstart_shows_every_file_of_the_site() -> None:
    assert set(quickstart_files()) == QUICKSTART_FILES


def test_quickstart_settings_point_at_the_emulator_and_its_meeting_page() -> None:
    from django_pagecall.emulator.server import DEFAULT_API_KEY

    namespace: dict[str, Any] = {}
    exec(quickstart_files()["mysite/settings.py"], namespace)  # noqa: S102 (the page's own)
    pagecall = namespace["PAGECALL"]
    assert pagecall["API_KEY"] == DEFAULT_API_KEY
    assert pagecall["API_URL"] == "http://127.0.0.1:8790/v1"
    # The admin's join and replay buttons then open the emulator's meeting page, not Pagecall's.
    assert pagecall["APP_URL"] == "http://127.0.0.1:8790"


def run_python(*args: str, cwd: Path, **extra_env: str) -> subprocess.CompletedProcess[str]:
    # The new site must stand on its own: no test settings, no checkout on the path.
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "PYTHONPATH"}}
    env.update(extra_env)
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def quickstart_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``django-admin startproject mysite``, then the quickstart's files written into it."""
    site = tmp_path_factory.mktemp("quickstart") / "mysite"
    site.mkdir()
    # From another directory: startproject refuses a name that the working directory makes
    # importable.
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    made = run_python("-m", "django", "startproject", "mysite", str(site), cwd=elsewhere)
    assert made.returncode == 0, made.stderr
    for name, text in quickstart_files().items():
        path = site / name
        if name == "mysite/settings.py":  # added to the end of the generated settings
            path.write_text(path.read_text() + "\n" + text)
        else:
            path.write_text(text)
    return site


def test_quickstart_site_passes_manage_py_check(quickstart_site: Path) -> None:
    checked = run_python("manage.py", "check", "--fail-level", "WARNING", cwd=quickstart_site)
    output = checked.stdout + checked.stderr
    assert checked.returncode == 0, output
    assert "System check identified no issues" in output
    assert "pagecall." not in output


WHICH_CELERY_APP = (
    "import django; django.setup(); "
    "from django_pagecall.tasks import create_room; "
    "print(create_room.app.main, create_room.app.conf.broker_url)"
)


def test_quickstart_site_queues_the_apps_tasks_with_its_celery_app(quickstart_site: Path) -> None:
    env_setting = "import os; os.environ['DJANGO_SETTINGS_MODULE'] = 'mysite.settings'; "
    answer = run_python("-c", env_setting + WHICH_CELERY_APP, cwd=quickstart_site)
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.split() == ["mysite", "redis://127.0.0.1:6379/0"]


def test_without_the_init_import_the_tasks_use_another_celery_app(
    quickstart_site: Path, tmp_path: Path
) -> None:
    # What docs/troubleshooting.md describes for rooms that stay pending.
    init = quickstart_site / "mysite" / "__init__.py"
    text = init.read_text()
    init.write_text("")
    try:
        env_setting = "import os; os.environ['DJANGO_SETTINGS_MODULE'] = 'mysite.settings'; "
        answer = run_python("-c", env_setting + WHICH_CELERY_APP, cwd=quickstart_site)
    finally:
        init.write_text(text)
    assert answer.returncode == 0, answer.stderr
    # Celery's default app, with no broker setting: what the page tells to look for.
    assert answer.stdout.split() == ["default", "None"]


@pytest.mark.parametrize(
    ("name", "old", "new", "expected"),
    [
        ("mysite/__init__.py", "from .celery import app as celery_app", "", "pagecall.W006"),
        (
            "mysite/urls.py",
            'path("pagecall/", include("django_pagecall.urls")),',
            "",
            "pagecall.W007",
        ),
        ("mysite/settings.py", "/pagecall/webhook/", "/pagecall/webhooks/", "pagecall.W007"),
        ("mysite/settings.py", '"socket_timeout": 5,', "", "pagecall.W008"),
    ],
    ids=["no-celery-import", "urls-not-included", "webhook-url-typo", "no-socket-timeout"],
)
def test_quickstart_site_with_one_mistake_is_warned(
    quickstart_site: Path, name: str, old: str, new: str, expected: str
) -> None:
    path = quickstart_site / name
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new).replace('__all__ = ["celery_app"]', ""))
    try:
        checked = run_python("manage.py", "check", cwd=quickstart_site)
    finally:
        path.write_text(text)
    output = checked.stdout + checked.stderr
    # A warning: build steps (migrate, collectstatic) still run.
    assert checked.returncode == 0, output
    assert set(re.findall(r"pagecall\.[EW]\d{3}", output)) == {expected}, output
    assert "HINT:" in output


def test_quickstart_site_without_the_init_import_logs_it_at_the_first_save(
    quickstart_site: Path,
) -> None:
    from tests.redis_server import free_port

    init = quickstart_site / "mysite" / "__init__.py"
    text = init.read_text()
    init.write_text("")
    # Celery's default app reads CELERY_BROKER_URL from the environment: a port nothing listens
    # on, so that the publish fails at once whatever runs on localhost.
    env = {"CELERY_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"}
    save_twice = (
        "from django_pagecall.models import Room; "
        "from django_pagecall.sync import publishing; "
        "Room.objects.create(name='First'); publishing.resume(); Room.objects.create(name='Second')"
    )
    try:
        # The site's own SQLite database, as startproject configures it.
        migrated = run_python("manage.py", "migrate", "-v", "0", cwd=quickstart_site)
        assert migrated.returncode == 0, migrated.stderr
        saved = run_python("manage.py", "shell", "-c", save_twice, cwd=quickstart_site, **env)
    finally:
        init.write_text(text)
    assert saved.returncode == 0, saved.stderr
    warned = [line for line in saved.stderr.splitlines() if "pagecall.W006" in line]
    assert len(warned) == 1, saved.stderr  # once per process
    assert "Celery's default app" in warned[0]
    # And the rows wait for the sweep, as the line after it says.
    assert saved.stderr.count("The row stays pending") == 2, saved.stderr


# System checks ------------------------------------------------------------------------------


def check_ids() -> set[str]:
    source = (ROOT / "django_pagecall" / "checks.py").read_text()
    ids = set(re.findall(r"pagecall\.[EW]\d{3}", source))
    assert ids  # the pattern still finds the ids
    return ids


def test_every_check_id_is_in_the_checks_table() -> None:
    page = (DOCS / "checks.md").read_text()
    assert set(re.findall(r"^\| `(pagecall\.[EW]\d{3})` \|", page, re.M)) == check_ids()


def test_every_check_id_has_a_troubleshooting_section() -> None:
    page = (DOCS / "troubleshooting.md").read_text()
    assert set(re.findall(r"^### `(pagecall\.[EW]\d{3})`$", page, re.M)) == check_ids()


# The site's pages ---------------------------------------------------------------------------


def test_every_page_is_in_the_index_toctree_and_list() -> None:
    index = (DOCS / "index.md").read_text()
    toctree = index.split("```{toctree}", 1)[1].split("```", 1)[0]
    entries = {line.strip() for line in toctree.splitlines()[1:] if line.strip()}
    entries -= {line for line in entries if line.startswith(":")}
    names = {p.stem for p in pages()} - {"index"}
    assert entries == names
    listed = set(re.findall(r"^- \[[^]]+\]\(([\w-]+)\.md\)", index, re.M))
    assert listed == names


# Versions and the changelog -----------------------------------------------------------------


def project() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def supported_versions() -> dict[str, str]:
    page = (DOCS / "versions.md").read_text()
    table = page.split("<!-- supported-versions", 1)[1].split("<!-- /supported-versions -->")[0]
    rows = re.findall(r"^\| ([^|]+?) \| ([^|]+?) \|$", table, re.M)
    return {name: value for name, value in rows[2:]}  # after the header and its rule


def minimum(requirement_name: str) -> str:
    from packaging.requirements import Requirement

    for line in project()["dependencies"]:
        requirement = Requirement(line)
        if requirement.name.lower() == requirement_name:
            (floor,) = [s.version for s in requirement.specifier if s.operator == ">="]
            return floor
    raise AssertionError(f"{requirement_name} is not a dependency")


def test_python_versions_match_the_classifiers_and_requires_python() -> None:
    from packaging.specifiers import SpecifierSet

    versions = re.findall(r"3\.\d+", supported_versions()["Python"])
    classifiers = project()["classifiers"]
    declared = {c.rsplit(" :: ", 1)[1] for c in classifiers if re.match(r".*Python :: 3\.\d+$", c)}
    assert set(versions) == declared
    requires = SpecifierSet(project()["requires-python"])
    assert all(f"{v}.0" in requires for v in versions)
    assert f"3.{max(int(v.split('.')[1]) for v in versions) + 1}.0" not in requires


def test_django_versions_match_the_classifiers_and_the_requirement() -> None:
    versions = re.findall(r"\d+\.\d+", supported_versions()["Django"])
    classifiers = project()["classifiers"]
    declared = {c.rsplit(" :: ", 1)[1] for c in classifiers if re.match(r".*Django :: \d", c)}
    assert set(versions) == declared
    assert minimum("django") == min(versions, key=lambda v: tuple(map(int, v.split("."))))


@pytest.mark.parametrize(
    ("row", "requirement"), [("Django REST framework", "djangorestframework"), ("Celery", "celery")]
)
def test_library_floors_match_the_requirements(row: str, requirement: str) -> None:
    assert supported_versions()[row].startswith(f"{minimum(requirement)} and later")


def test_classifiers_say_what_the_package_is() -> None:
    classifiers = set(project()["classifiers"])
    for expected in (
        "Framework :: Django",
        "Framework :: Celery",
        "Operating System :: OS Independent",
        "Programming Language :: Python :: 3 :: Only",
    ):
        assert expected in classifiers
    assert any(c.startswith("Development Status :: ") for c in classifiers)
    # The license is the SPDX expression; a License classifier beside it is refused by builds.
    assert project()["license"] == "MIT"
    assert not any(c.startswith("License :: ") for c in classifiers)


CHANGELOG_SECTIONS = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def test_changelog_has_an_entry_for_this_version() -> None:
    text = CHANGELOG.read_text()
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2}|Unreleased)$", text, re.M)
    assert project()["version"] in {version for version, _ in releases}
    headings = re.findall(r"^## (.*)$", text, re.M)
    assert len(headings) == len(releases), "every release heading reads `## [x.y.z] - date`"
    assert set(re.findall(r"^### (.*)$", text, re.M)) <= CHANGELOG_SECTIONS


def test_docs_changelog_includes_the_changelog() -> None:
    page = (DOCS / "changelog.md").read_text()
    assert page.startswith("```{include} ../CHANGELOG.md\n")


def test_changelog_links_resolve_from_the_repository_and_the_docs() -> None:
    # The docs include it with `:relative-docs: docs/`, which turns `docs/x.md` into `x.md`.
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", CHANGELOG.read_text()):
        if "://" not in target:
            assert target.startswith("docs/"), target
            assert (ROOT / target).is_file(), target


def test_quickstart_install_needs_no_release() -> None:
    # Until the first release is on PyPI, the pages install from a checkout or git.
    for path in (README, DOCS / "quickstart.md"):
        for block in code_blocks(path, "sh"):
            for line in block.splitlines():
                if line.startswith("pip install"):
                    assert "/path/to/" in line or "git+" in line, (path.name, line)


@pytest.mark.parametrize("name", ["quickstart.md", "celery.md", "troubleshooting.md"])
def test_pages_show_the_celery_bootstrap(name: str) -> None:
    assert quickstart_files()["mysite/__init__.py"] in code_blocks(DOCS / name)
