"""The distributions: what the sdist and the wheel carry, and that the wheel works on its own
in a new virtualenv. Needs PyPI (docs/contributing.md, "Test markers").
"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.parser import HeaderParser
from pathlib import Path, PurePosixPath

import pytest

import django_pagecall

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "django_pagecall"

#: Copied to the build directory: everything but caches, virtualenvs and build output.
IGNORED = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".nox",
    "build",
    "_build",
    "dist",
    "*.egg-info",
    "__pycache__",
    "*.py[cod]",
    ".*_cache",
    "test-artifacts",
    "node_modules",
    "*.sqlite3",
)

#: Data files the wheel must carry, as globs relative to the package (when the source has any).
DATA_GLOBS = [
    "py.typed",
    "emulator/*.json",
    "webhooks/*.json",
    "migrations/*",
    "templates/**/*",
    "static/**/*",
    "locale/**/*",
]

#: Modules that may not import in a bare install (they need a test-only dependency).
NEEDS_TEST_EXTRAS = {"django_pagecall.emulator.pytest_plugin"}


#: Variables that would let the checkout or the test settings leak into the new virtualenv.
HIDDEN_ENV = {"PYTHONPATH", "DJANGO_SETTINGS_MODULE", "VIRTUAL_ENV"}


def uv_executable() -> str | None:
    """uv when scripts/test.sh provides it (``UV``) or it is on PATH: it makes this module ~3x faster."""
    return os.environ.get("UV") or shutil.which("uv")


def run(*args: str | Path, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={k: v for k, v in os.environ.items() if k not in HIDDEN_ENV},
    )
    assert result.returncode == 0, (
        f"{' '.join(map(str, args))} exited {result.returncode}\n"
        f"--- stdout\n{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-6000:]}"
    )
    return result.stdout


def package_files(*globs: str) -> set[str]:
    """Source files under django_pagecall/ matching ``globs``, as paths inside the distribution."""
    found: set[str] = set()
    for pattern in globs:
        for path in PACKAGE.glob(pattern):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                found.add(path.relative_to(ROOT).as_posix())
    return found


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{"wheel": ..., "sdist": ...}`` built from a copy of the working tree."""
    base = tmp_path_factory.mktemp("dists")
    source = base / "source"
    shutil.copytree(ROOT, source, ignore=IGNORED, symlinks=True)
    out = base / "dist"
    installer = ["--installer", "uv"] if uv_executable() else []
    # The sdist, then the wheel from the sdist, each in an isolated build environment: a file that
    # MANIFEST.in forgets is missing from the wheel too.
    run(sys.executable, "-m", "build", *installer, "--outdir", out, source)
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


@pytest.fixture(scope="module")
def wheel_names(dists: dict[str, Path]) -> set[str]:
    with zipfile.ZipFile(dists["wheel"]) as wheel:
        return set(wheel.namelist())


@pytest.fixture(scope="module")
def sdist_names(dists: dict[str, Path]) -> set[str]:
    with tarfile.open(dists["sdist"]) as sdist:
        # Drop the leading "django_pagecall-0.1.0/".
        return {str(PurePosixPath(*PurePosixPath(n).parts[1:])) for n in sdist.getnames()}


def dist_info(wheel_names: set[str], dists: dict[str, Path], name: str) -> str:
    (path,) = [n for n in wheel_names if n.endswith(f".dist-info/{name}")]
    with zipfile.ZipFile(dists["wheel"]) as wheel:
        return wheel.read(path).decode()


def test_wheel_carries_every_module(wheel_names: set[str]) -> None:
    modules = package_files("**/*.py")
    assert "django_pagecall/__init__.py" in modules
    assert modules - wheel_names == set()


def test_wheel_carries_the_data_files(wheel_names: set[str]) -> None:
    data = package_files(*DATA_GLOBS)
    assert {
        "django_pagecall/py.typed",
        "django_pagecall/emulator/openapi3.json",
        "django_pagecall/webhooks/openapi.json",
        "django_pagecall/templates/admin/django_pagecall/room/terminate_confirmation.html",
    } <= data
    assert data - wheel_names == set()


def test_wheel_carries_only_the_package(wheel_names: set[str]) -> None:
    top_level = {name.split("/")[0] for name in wheel_names}
    assert {t for t in top_level if not t.endswith(".dist-info")} == {"django_pagecall"}


def test_wheel_metadata(wheel_names: set[str], dists: dict[str, Path]) -> None:
    metadata = HeaderParser().parsestr(dist_info(wheel_names, dists, "METADATA"))
    assert metadata["Name"] == "django-pagecall"
    assert metadata["Version"] == django_pagecall.__version__
    assert metadata["License-Expression"] == "MIT"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in wheel_names)
    assert "## Install" in metadata.get_payload()  # the README is the long description


def test_wheel_registers_the_pytest_plugin(wheel_names: set[str], dists: dict[str, Path]) -> None:
    entry_points = configparser.ConfigParser()
    entry_points.read_string(dist_info(wheel_names, dists, "entry_points.txt"))
    module = entry_points["pytest11"]["pagecall"]
    assert module == "django_pagecall.emulator.pytest_plugin"
    assert module.replace(".", "/") + ".py" in wheel_names


def test_sdist_carries_package_docs_and_tests(sdist_names: set[str]) -> None:
    expected = {
        "README.md",
        "CHANGELOG.md",
        "LICENSE",
        "pyproject.toml",
        "scripts/settings_table.py",
    }
    expected |= package_files("**/*.py", *DATA_GLOBS)
    expected |= {p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").glob("*.py")}
    assert expected - sdist_names == set()


def test_sdist_leaves_out_development_trees(sdist_names: set[str]) -> None:
    for name in sdist_names:
        assert not name.startswith(("example_project/", "benchmarks/", ".ci/", ".git/")), name
        assert "__pycache__" not in name, name
    assert "noxfile.py" not in sdist_names


#: Runs inside the new virtualenv: imports everything and runs a bare site's migrate and check.
SMOKE = """
import importlib, importlib.metadata, pkgutil, sys
from pathlib import Path

import django
from django.conf import settings

settings.configure(
    INSTALLED_APPS=[
        "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
        "django.contrib.sessions", "django.contrib.messages", "rest_framework", "django_pagecall",
    ],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    MIDDLEWARE=[
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    ],
    TEMPLATES=[{
        "BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
        "OPTIONS": {"context_processors": [
            "django.template.context_processors.request",
            "django.contrib.auth.context_processors.auth",
            "django.contrib.messages.context_processors.messages",
        ]},
    }],
    ROOT_URLCONF="django_pagecall.urls",
    SECRET_KEY="packaging-smoke-test",
    USE_TZ=True,
    PAGECALL={"API_KEY": "k", "WEBHOOK_URL": "https://site.example/pagecall/webhook/"},
)
django.setup()

import django_pagecall, django_pagecall.conf, django_pagecall.emulator
site_packages = Path(django_pagecall.__file__).resolve().parents[1]
assert site_packages.name == "site-packages", django_pagecall.__file__

skip = set(sys.argv[1:])
for module in pkgutil.walk_packages(django_pagecall.__path__, "django_pagecall."):
    if module.name not in skip:
        importlib.import_module(module.name)

plugins = {e.name: e.value for e in importlib.metadata.entry_points(group="pytest11")}
assert plugins.get("pagecall") == "django_pagecall.emulator.pytest_plugin", plugins

from django.core.management import call_command
call_command("migrate", verbosity=0)
call_command("makemigrations", "django_pagecall", check=True, dry_run=True, verbosity=0)
call_command("check")
print("smoke ok")
"""


def test_wheel_installs_and_works_in_a_new_virtualenv(
    dists: dict[str, Path], tmp_path: Path
) -> None:
    """Installed with its dependencies, the wheel imports every module, and a bare Django site
    runs ``migrate`` and ``check``."""
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    uv = uv_executable()
    if uv:
        run(uv, "venv", "--quiet", "--python", sys.executable, venv)
        run(uv, "pip", "install", "--quiet", "--python", python, dists["wheel"])
    else:
        run(sys.executable, "-m", "venv", venv)
        run(python, "-m", "pip", "install", "--quiet", dists["wheel"])
    script = tmp_path / "smoke.py"
    script.write_text(SMOKE)
    # cwd is tmp_path, so the checkout cannot shadow the installed package.
    assert "smoke ok" in run(python, script, *sorted(NEEDS_TEST_EXTRAS), cwd=tmp_path)
