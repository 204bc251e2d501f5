"""The admin, the example site and the room page in a real browser: Debian's chromium, driven
by Playwright.

Screenshots go to ``test-artifacts/screenshots/``. Without chromium or Playwright the tests
skip, except under CI (docs/contributing.md, "Test markers").
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from django.db import connections
from django.utils import timezone

from django_pagecall.emulator import Emulator
from django_pagecall.models import Room, Session, SyncState
from tests.conftest import wait_for
from tests.redis_server import free_port
from tests.test_demo import MANAGE, demo_env

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.browser


def unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this fails: scripts/test.sh installs chromium)")
    pytest.skip(reason)


class Browser:
    """A page of a fresh chromium profile, and numbered screenshots of it."""

    def __init__(self, page: Any, name: str) -> None:
        self.page = page
        self.name = name
        self.count = 0

    def shot(self, label: str) -> Path:
        self.count += 1
        path = SCREENSHOTS / f"{self.name}-{self.count:02d}-{label}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def reload_until(self, selector: str, text: str, timeout: float = 30) -> None:
        """Reload until ``selector``'s text is ``text``, as a person waiting for a change would."""

        def shows() -> bool:
            self.page.reload()
            found = self.page.locator(selector)
            return found.count() > 0 and found.first.inner_text().strip() == text

        wait_for(shows, timeout=timeout, interval=0.5)

    def log_in(self, url: str, username: str, password: str) -> None:
        self.page.goto(url)
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", password)
        self.page.locator("form [type=submit]").first.click()
        self.page.wait_for_load_state()


@pytest.fixture
def browser(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright is not installed: pip install -e '.[test]'")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes
    # meanwhile are ordinary blocking calls, which Django would otherwise refuse.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1440, "height": 900},
        )
        context.set_default_timeout(15_000)
        try:
            page = context.pages[0] if context.pages else context.new_page()
            yield Browser(page, request.node.name.removeprefix("test_"))
        finally:
            context.close()
            # Inside sync_playwright() the contextvars context differs, so the test's queries
            # ran on a connection of their own that pytest-django's teardown does not see:
            # close it here, or it would keep the test database from being dropped.
            connections.close_all()


@pytest.mark.integration
@pytest.mark.usefixtures("celery_worker_thread")
def test_admin_create_a_room_see_it_synced_and_someone_join(
    browser: Browser, live_server: Any, pagecall_emulator: Emulator, settings: Any, admin_user: Any
) -> None:
    """A staff member creates a room with two members on the add page and reloads its change page
    until a real worker (a thread, Redis broker, PostgreSQL) has synced it; a participant joins
    through the emulator, whose webhook goes to the live server; the session shows under the room
    and in the room list, the session and delivery lists filter down to it, and the room is
    terminated through the confirmation page."""
    # Pagecall's webhooks for rooms created now go to the live server.
    settings.PAGECALL = {**settings.PAGECALL, "WEBHOOK_URL": f"{live_server.url}/pagecall/webhook/"}
    page = browser.page
    browser.log_in(f"{live_server.url}/admin/login/?next=/admin/", "admin", "password")
    assert page.locator("#site-name").is_visible()
    assert page.get_by_role("link", name="Rooms").is_visible()
    browser.shot("admin-index")

    page.goto(f"{live_server.url}/admin/django_pagecall/room/add/")
    page.fill("#id_name", "Browser standup")
    page.select_option("#id_type", "public")
    for i, (user_id, name, kind) in enumerate(
        [("alice", "Alice", "host"), ("bob", "Bob", "guest")]
    ):
        page.fill(f"#id_members-{i}-user_id", user_id)
        page.fill(f"#id_members-{i}-name", name)
        page.select_option(f"#id_members-{i}-type", kind)
    browser.shot("add-room")
    page.click("input[name=_continue]")
    page.wait_for_load_state()
    assert "was added successfully" in page.locator(".messagelist").inner_text()

    browser.reload_until(".field-state .pagecall-badge", "synced")
    pagecall_id = page.locator(".field-pagecall_id .readonly").inner_text().strip()
    assert re.fullmatch(r"[0-9a-f]{24}", pagecall_id)
    assert pagecall_id in pagecall_emulator.rooms
    members = page.locator("#members-group")
    assert members.get_by_text("synced").count() == 2  # both members went with the room
    assert members.get_by_role("button", name="join").count() == 2
    browser.shot("synced")

    joined = pagecall_emulator.join(pagecall_id, user_id="alice")
    assert joined["delivery"]["status"] == 200, joined["delivery"]
    session_id = joined["session"]["id"]
    page.reload()
    sessions = page.locator("#sessions-group")
    assert sessions.get_by_text(session_id).is_visible()
    assert sessions.locator("td.field-user_id").first.inner_text().strip() == "alice"
    browser.shot("session-under-room")

    # The session and delivery lists, filtered as staff would: this room, then alice.
    page.goto(f"{live_server.url}/admin/django_pagecall/session/")
    filters = page.locator("#changelist-filter")
    filters.get_by_role("link", name="Browser standup").click()
    page.wait_for_load_state()
    filters.get_by_role("link", name="alice", exact=True).click()
    page.wait_for_load_state()
    assert f"room__id__exact={Room.objects.get(pagecall_id=pagecall_id).pk}" in page.url
    assert "user_id=alice" in page.url
    assert page.locator("#result_list tbody tr").count() == 1
    session_row = page.locator("#result_list tbody tr").first
    assert session_row.locator("td.field-user").inner_text().strip() == "alice"
    assert session_row.locator("td.field-online img").get_attribute("alt") == "True"
    browser.shot("session-list-filtered")
    session_row.locator("th.field-joined_at a").click()  # the session's own page, with its id
    page.wait_for_load_state()
    assert page.locator(".field-session_id .readonly").inner_text().strip() == session_id
    page.goto(f"{live_server.url}/admin/django_pagecall/webhookdelivery/")
    page.locator("#changelist-filter").get_by_role("link", name="sessionJoined").click()
    page.wait_for_load_state()
    deliveries = page.locator("#result_list tbody tr")
    assert deliveries.count() == 1
    assert "sessionJoined" in deliveries.first.inner_text()
    browser.shot("delivery-list-joined")

    page.goto(f"{live_server.url}/admin/django_pagecall/room/")
    row = page.locator("#result_list tbody tr", has_text="Browser standup")
    assert row.locator("td.field-online_now").inner_text().strip() == "1: alice"
    browser.shot("room-list-online")

    # Terminate it: the action asks first, then the worker ends it on Pagecall, which ends the
    # session (a sessionLeft webhook to the live server).
    row.locator("input.action-select").check()
    page.select_option("select[name=action]", "terminate_rooms")
    page.click("button[name=index]")
    page.wait_for_load_state()
    assert "Are you sure you want to terminate the selected room?" in page.content()
    browser.shot("terminate-confirmation")
    page.click("input[type=submit][value='Yes, terminate them']")
    page.wait_for_load_state()
    assert "1 room is being terminated." in page.locator(".messagelist").inner_text()
    room = Room.objects.get(pagecall_id=pagecall_id)
    wait_for(lambda: Room.objects.get(pk=room.pk).is_terminated)
    wait_for(lambda: Session.objects.get(session_id=session_id).left_at is not None)
    page.goto(f"{live_server.url}/admin/django_pagecall/room/{room.pk}/change/")
    assert page.locator(".field-terminated img").get_attribute("alt") == "True"
    browser.shot("terminated")


@contextlib.contextmanager
def serving_demo(tmp_path: Path, port: int) -> Iterator[subprocess.Popen[str]]:
    """``pagecall_demo --serve`` as a process, stopped with Ctrl-C (SIGINT) as a person would."""
    log = (tmp_path / "serve.log").open("w")
    argv = [sys.executable, str(MANAGE), "pagecall_demo", "--serve", "--port", str(port)]
    process = subprocess.Popen(
        [*argv, "--emulator-port", "0"],
        cwd=ROOT,
        env=demo_env(tmp_path),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_example_site_enter_the_embedded_meeting_from_my_rooms(
    browser: Browser, tmp_path: Path
) -> None:
    """The example site as ``manage.py pagecall_demo --serve`` runs it (its own emulator, worker
    process, SQLite and filesystem broker): Alice logs in, opens her room from "my rooms", enters
    the meeting embedded in its page, and the admin shows her online."""
    port = free_port()
    site = f"http://127.0.0.1:{port}"
    with serving_demo(tmp_path, port) as process:
        wait_for(lambda: answers(f"{site}/accounts/login/") or process.poll() is not None, 60)
        assert process.poll() is None, (tmp_path / "serve.log").read_text()
        page = browser.page
        browser.log_in(f"{site}/accounts/login/", "alice", "alice")
        assert page.locator("h1").inner_text() == "My rooms"
        browser.reload_until(".room .join", "Enter")  # once the worker has created the room
        assert page.locator(".room h2").inner_text() == "Alice and Bob's room"
        browser.shot("my-rooms")

        page.click(".room .join")
        page.wait_for_load_state()
        assert page.url.startswith(f"{site}/pagecall/room/")
        assert page.locator("header").get_by_text("Example site").is_visible()  # its layout
        meeting = page.frame_locator("iframe.pagecall-room__frame")
        meeting.get_by_role("button", name="Enter the meeting").click()
        meeting.get_by_role("button", name="Leave").wait_for()
        browser.shot("in-the-meeting")

        page.goto(f"{site}/")
        assert "1 online now" in page.locator(".room").inner_text()
        page.get_by_role("button", name="Log out").click()
        browser.log_in(f"{site}/admin/login/?next=/admin/django_pagecall/room/", "admin", "admin")
        row = page.locator("#result_list tbody tr", has_text="Alice and Bob's room")
        assert row.locator("td.field-online_now").inner_text().strip() == "1: alice"
        browser.shot("admin-sees-alice")
    assert process.returncode is not None


def test_a_member_enters_the_embedded_meeting_from_the_room_page(
    browser: Browser, live_server: Any, pagecall_emulator: Emulator, settings: Any, client: Any
) -> None:
    """The app's room page: a member enters the embedded meeting (the emulator's meeting page in
    the frame) and leaves it, and her session is recorded."""
    from django.contrib.auth import get_user_model

    from django_pagecall.models import Member

    settings.PAGECALL = {**settings.PAGECALL, "WEBHOOK_URL": f"{live_server.url}/pagecall/webhook/"}
    alice = get_user_model().objects.create_user("alice", password="pw", first_name="Alice")
    room = Room.objects.create(name="Embedded algebra", type="private")
    Member.objects.create(room=room, site_user=alice, name="Alice")
    room.refresh_from_db()
    assert room.pagecall_id  # created on the emulator (tasks run eagerly here)

    # Signed in as alice: the site's session cookie, as her browser would hold it.
    client.force_login(alice)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    browser.page.context.add_cookies(
        [{"name": cookie.key, "value": cookie.value, "url": live_server.url}]
    )
    page = browser.page
    page.goto(f"{live_server.url}/pagecall/room/{room.pk}/")
    assert page.locator("h1").inner_text() == "Embedded algebra"
    frame_element = page.locator("iframe.pagecall-room__frame")
    assert frame_element.get_attribute("title") == "Meeting: Embedded algebra"
    assert "camera" in (frame_element.get_attribute("allow") or "")
    assert page.get_by_role("link", name="Open the meeting in a new tab").is_visible()
    meeting = page.frame_locator("iframe.pagecall-room__frame")
    enter = meeting.get_by_role("button", name="Enter the meeting")
    enter.wait_for()
    assert "Embedded algebra" in meeting.locator("body").inner_text()
    assert page.locator(".pagecall-room__fallback").is_hidden()  # the frame loaded
    browser.shot("room-page")

    enter.click()
    meeting.get_by_role("button", name="Leave").wait_for()
    session = wait_for(lambda: Session.objects.filter(room=room, left_at=None).first())
    assert session.user_id == str(alice.pk)
    assert session.joined_at is not None
    browser.shot("in-the-meeting")

    meeting.get_by_role("button", name="Leave").click()
    meeting.get_by_role("button", name="Enter the meeting").wait_for()
    wait_for(lambda: Session.objects.get(pk=session.pk).left_at is not None)
    browser.shot("left-the-meeting")


def admin_lists_rows() -> None:
    """Rooms and sessions as a busy site has them: long names, a failed room, online people."""
    now = timezone.now()
    rooms = Room.objects.bulk_create(
        [
            Room(
                name="Weekly engineering all-hands and quarterly planning review",
                type="public",
                sync_state=SyncState.SYNCED,
                pagecall_id="65f1c0ffee0123456789abcd",
            ),
            Room(
                name="1:1 Alice Kim / Bob Park (mentoring, second semester)",
                type="private",
                sync_state=SyncState.FAILED,
                sync_error='POST /rooms [400]: Pagecall answered 400\n{"message": "Invalid"}',
            ),
            Room(name="Open office hours", type="open", sync_state=SyncState.PENDING),
        ]
    )
    for number, user_id in enumerate(["alice.kim@school.example", "bob", "carol", "dave"]):
        joined = now - timedelta(minutes=90 - 10 * number)
        Session.objects.create(
            room=rooms[0],
            session_id=f"65f1d00d{number:016x}",
            member_id=f"65f1e00e{number:016x}",
            user_id=user_id,
            joined_at=joined,
            left_at=None if number % 2 else joined + timedelta(minutes=42),
        )


#: How many lines an element's text takes: the distinct tops of its text's boxes.
LINES_OF_TEXT = """e => {
    const range = document.createRange();
    range.selectNodeContents(e);
    return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size;
}"""


def test_admin_lists_fit_1280_pixels(
    browser: Browser, live_server: Any, admin_user: Any, transactional_db: None
) -> None:
    admin_lists_rows()
    page = browser.page
    page.set_viewport_size({"width": 1280, "height": 800})
    browser.log_in(f"{live_server.url}/admin/login/?next=/admin/", "admin", "password")
    for model, columns in (
        ("room", ["name", "state_and_error", "online_now"]),
        ("session", ["joined_at", "room_name", "user", "duration", "online"]),
    ):
        page.goto(f"{live_server.url}/admin/django_pagecall/{model}/")
        browser.shot(f"{model}-list-1280")
        widths = page.evaluate(
            """() => {
                const table = document.querySelector('#result_list');
                const results = table.closest('.results') || table.parentElement;
                return {
                    table: table.scrollWidth,
                    room: results.clientWidth,
                    page: document.documentElement.scrollWidth,
                    viewport: window.innerWidth,
                };
            }"""
        )
        # The whole table shows: nothing scrolls sideways, in the table's box or the page.
        assert widths["table"] <= widths["room"], (model, widths)
        assert widths["page"] <= widths["viewport"], (model, widths)
        header = page.locator("#result_list thead")
        for column in columns:
            assert header.locator(f"th.column-{column}").is_visible(), (model, column)
        # Even a long room name keeps to three lines.
        names = page.locator("#result_list tbody .field-name, #result_list tbody .field-room_name")
        for index in range(names.count()):
            lines = names.nth(index).evaluate(LINES_OF_TEXT)
            assert 1 <= lines <= 3, (model, names.nth(index).inner_text(), lines)


@pytest.mark.django_db(transaction=True)
def test_the_usage_report_and_a_rooms_attendance(
    browser: Browser,
    live_server: Any,
    admin_user: Any,
    pagecall_emulator: Emulator,
    pagecall_workspace: Any,
) -> None:
    from django.test import Client

    from django_pagecall.usage import month_of
    from tests.test_meetings import Stay
    from tests.test_usage import events_of, headers_for
    from tests.test_webhook_support import make_room, post

    pagecall_workspace("school")
    lesson, lecture = make_room(pagecall_emulator, name="Lesson"), make_room(pagecall_emulator)
    Room.objects.filter(pk=lecture.room.pk).update(workspace="school", name="Lecture")
    start = timezone.now() - timedelta(hours=3)
    if month_of(start) != month_of(start + timedelta(hours=2)):
        start -= timedelta(hours=3)  # every stay in one month
    stays = [Stay("alice", 0, 3000), Stay("bob", 600, 2400), Stay("alice", 3600, 4200)]
    webhooks = Client()
    for sent in events_of(lesson, stays, start) + events_of(lecture, stays[:2], start):
        assert post(webhooks, sent, headers_for(sent, lesson, lecture)).status_code == 200

    page = browser.page
    browser.log_in(f"{live_server.url}/admin/login/?next=/admin/", "admin", "password")
    page.goto(f"{live_server.url}/admin/django_pagecall/session/usage/")
    browser.shot("usage-report")
    this_month = month_of(start).strftime("%Y-%m")
    rows = page.locator("table.pagecall-usage-report tbody tr")
    cells = [rows.nth(i).locator("td").all_inner_texts() for i in range(rows.count())]
    assert [this_month, "default", "2", "60", "3", "2"] in cells, cells
    assert [this_month, "school", "1", "50", "2", "2"] in cells, cells

    page.goto(f"{live_server.url}/admin/django_pagecall/room/{lesson.room.pk}/change/")
    browser.shot("room-attendance")
    attendance = page.locator(".field-attendance_report table.pagecall-report")
    assert attendance.is_visible()
    assert "alice" in attendance.inner_text() and "bob" in attendance.inner_text()


@pytest.mark.django_db(transaction=True)
def test_the_admin_in_korean(
    browser: Browser, live_server: Any, admin_user: Any, pagecall_emulator: Emulator, settings: Any
) -> None:
    from django.test import Client

    from django_pagecall.models import Member
    from tests.test_meetings import Stay
    from tests.test_usage import events_of, headers_for
    from tests.test_webhook_support import make_room, post

    # As docs/translations.md says: Korean as the site's language (the live server's middleware,
    # LocaleMiddleware among them, is loaded once for the whole session).
    settings.LANGUAGE_CODE = "ko"
    math = make_room(pagecall_emulator, name="수학")
    Room.objects.filter(pk=math.room.pk).update(sync_state=SyncState.SYNCED)
    Member.objects.bulk_create([Member(room=math.room, user_id="alice", name="앨리스")])
    start = timezone.now() - timedelta(minutes=30)
    for sent in events_of(math, [Stay("alice", 0, 600)], start):
        assert post(Client(), sent, headers_for(sent, math)).status_code == 200

    page = browser.page
    browser.log_in(f"{live_server.url}/admin/login/?next=/admin/", "admin", "password")
    page.goto(f"{live_server.url}/admin/django_pagecall/room/")
    browser.shot("room-list")
    assert page.locator("#content h1").inner_text() == "변경할 회의실 선택"
    page.goto(f"{live_server.url}/admin/django_pagecall/room/{math.room.pk}/change/")
    page.locator("fieldset details summary").last.click()  # open the timestamps
    browser.shot("room-page")
    text = page.locator("#content").inner_text()
    for korean in (
        "회의실 변경",
        "회의 녹화",
        "동기화됨",
        "기록 시각",
        "생성 시각",
        "멤버",
        "세션",
    ):
        assert korean in text, korean
