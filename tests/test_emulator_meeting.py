"""The emulator's meeting pages (``/meet``, ``/replay``), over real HTTP: entering and leaving
through their forms makes the emulator's sessions and sends the webhooks, refusals are 4xx pages,
and the app's join links open them end to end."""

from __future__ import annotations

import http.client
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import IO, Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
import requests
from django.urls import reverse

from django_pagecall.emulator import Emulator, EmulatorError
from django_pagecall.models import Room, Session
from tests.conftest import ROOT
from tests.test_emulator import ID, Api, WebhookReceiver, api, receiver

__all__ = ["api", "receiver"]  # fixtures, imported to be registered here

HTML = "text/html; charset=utf-8"


class Page(HTMLParser):
    """What a test (or a person) sees of a page: its elements by id, buttons, title, main."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__()
        self.response = response
        self.lang: str | None = None
        self.main: dict[str, str] = {}
        self.texts: dict[str, str] = {}  # element id, or tag name, -> the text of the last one
        self.buttons: list[str] = []  # the visible text of each <button>
        self.submits: dict[str, tuple[str, str]] = {}  # a button's text -> its name and value
        self._button: tuple[str, str] = ("", "")
        self.hidden: dict[str, str] = {}  # hidden form fields
        self.actions: list[str] = []
        self._open: list[tuple[str, str | None]] = []  # (tag, id) of the elements being read
        self.feed(response.text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if tag == "html":
            self.lang = attributes.get("lang")
        elif tag == "main":
            self.main = attributes
        elif tag == "form":
            self.actions.append(attributes.get("action", ""))
        elif tag == "button":
            self._button = (attributes.get("name", ""), attributes.get("value", ""))
        elif tag == "input" and attributes.get("type") == "hidden":
            self.hidden[attributes["name"]] = attributes["value"]
        if tag in ("input", "meta", "link"):
            return  # void elements
        self._open.append((tag, attributes.get("id")))
        for key in (tag, attributes.get("id")):
            if key is not None:
                self.texts[key] = ""

    def handle_endtag(self, tag: str) -> None:
        opened, _ = self._open.pop()
        assert opened == tag, f"<{opened}> closed by </{tag}>"
        if tag == "button":
            self.buttons.append(self.text("button"))
            self.submits[self.text("button")] = self._button

    def handle_data(self, data: str) -> None:
        for tag, element_id in self._open:
            for key in (tag, element_id):
                if key is not None:
                    self.texts[key] += data

    def text(self, element_id: str) -> str:
        return " ".join(self.texts[element_id].split())


@pytest.fixture
def browser() -> Iterator[requests.Session]:
    session = requests.Session()
    session.trust_env = False  # no proxies: the emulator is on loopback
    yield session
    session.close()


def hooked_room(api: Api, receiver: WebhookReceiver, **body: Any) -> dict[str, Any]:
    webhook = {"url": f"{receiver.url}/hook", "headers": {"X-Secret": "s3cret"}}
    return api.create_room(webhook=webhook, **body)


def token_of(api: Api, user_id: str, **fields: Any) -> str:
    response = api.post("/users", json={"user_id": user_id, **fields})
    assert response.status_code == 200, response.text
    token: str = response.json()["user"]["access_token"]
    return token


def meet_url(emu: Emulator, room_id: str, token: str | None = None, page: str = "meet") -> str:
    query = {"room_id": room_id}
    if token is not None:
        query["access_token"] = token
    return f"{emu.app_url}/{page}?{urlencode(query)}"


def visit(browser: requests.Session, url: str, status: int = 200) -> Page:
    response = browser.get(url, timeout=10)
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == HTML
    page = Page(response)
    assert page.lang == "en" and page.text("title").endswith("Pagecall emulator")
    assert page.text("h1")
    assert page.main.get("data-pagecall-emulator")
    return page


def press(
    browser: requests.Session, page: Page, button: str, status: int = 303
) -> requests.Response:
    """Submit the page's form the way a browser does: its action, hidden fields, the button."""
    assert button in page.buttons, page.buttons
    (action,) = page.actions
    name, value = page.submits[button]
    data = {**page.hidden, name: value}
    url = urljoin(page.response.url, action)
    response = browser.post(url, data=data, allow_redirects=False, timeout=10)
    assert response.status_code == status, response.text
    return response


def follow(browser: requests.Session, emu: Emulator, response: requests.Response) -> Page:
    location = response.headers["Location"]
    assert location.startswith("/meet?")
    return visit(browser, emu.app_url + location)


def test_a_member_enters_and_leaves_through_the_page(
    api: Api, pagecall_emulator: Emulator, receiver: WebhookReceiver, browser: requests.Session
) -> None:
    emu = pagecall_emulator
    members = [{"user_id": "ada", "type": "host"}]
    room = hooked_room(api, receiver, name="Design review", type="private", members=members)
    token = token_of(api, "ada", name="Ada Lovelace")
    url = meet_url(emu, room["id"], token)

    page = visit(browser, url)
    assert page.main["data-pagecall-emulator"] == "meeting"
    assert page.main["data-state"] == "out" and page.main["data-user-id"] == "ada"
    assert page.text("room-name") == "Design review"
    assert page.text("user-name") == "Ada Lovelace" and page.text("user-id") == "ada"
    assert "host" in page.text("status")
    assert page.buttons == ["Enter the meeting"]
    assert emu.sessions(room["id"]) == [] and receiver.calls == []

    entered = press(browser, page, "Enter the meeting")
    assert entered.headers["Location"] == url.removeprefix(emu.app_url)
    (session,) = emu.sessions(room["id"])
    assert session["user_id"] == "ada" and "disconnected_at" not in session
    (joined,) = receiver.calls
    assert joined["path"] == "/hook" and joined["headers"]["x-secret"] == "s3cret"
    assert joined["body"]["action"] == "sessionJoined"
    assert joined["body"]["payload"]["userId"] == "ada"
    assert joined["body"]["payload"]["sessionId"] == session["id"]
    assert joined["body"]["payload"]["sessionsCount"] == 1
    assert [d["status"] for d in emu.webhooks] == [200]

    inside = follow(browser, emu, entered)
    assert inside.main["data-state"] == "in"
    assert inside.buttons == ["Leave"]
    assert inside.text("session-id") == session["id"]
    assert visit(browser, url).buttons == ["Leave"]  # coming back, still in: Leave, not Enter

    left = press(browser, inside, "Leave")
    (session,) = emu.sessions(room["id"])
    assert "disconnected_at" in session
    assert [c["body"]["action"] for c in receiver.calls] == ["sessionJoined", "sessionLeft"]
    left_payload = receiver.calls[1]["body"]["payload"]
    assert left_payload["sessionId"] == session["id"] and left_payload["sessionsCount"] == 0
    assert follow(browser, emu, left).buttons == ["Enter the meeting"]
    # The pages are no API calls: only the room and the user are recorded.
    assert [(r["method"], r["path"]) for r in emu.requests] == [
        ("POST", "/v1/rooms"),
        ("POST", "/v1/users"),
    ]


def test_a_double_click_makes_one_session_and_a_late_leave_nothing(
    api: Api, pagecall_emulator: Emulator, receiver: WebhookReceiver, browser: requests.Session
) -> None:
    emu = pagecall_emulator
    room = hooked_room(api, receiver, type="public")
    page = visit(browser, meet_url(emu, room["id"], token_of(api, "bo")))
    press(browser, page, "Enter the meeting")
    inside = follow(browser, emu, press(browser, page, "Enter the meeting"))
    assert len(emu.sessions(room["id"])) == 1 and len(receiver.calls) == 1
    press(browser, inside, "Leave")
    press(browser, inside, "Leave")  # the same form again: already out
    assert [c["body"]["action"] for c in receiver.calls] == ["sessionJoined", "sessionLeft"]


def test_someone_already_in_through_the_control_api_sees_leave(
    api: Api, pagecall_emulator: Emulator, browser: requests.Session
) -> None:
    emu = pagecall_emulator
    room = api.create_room(type="public")
    token = token_of(api, "cy")
    joined = emu.join(room["id"], user_id="cy")
    page = visit(browser, meet_url(emu, room["id"], token))
    assert page.buttons == ["Leave"] and page.hidden["session_id"] == joined["session"]["id"]
    press(browser, page, "Leave")
    assert "disconnected_at" in emu.sessions(room["id"])[0]


def test_an_anonymous_guest_in_an_open_room(
    api: Api, pagecall_emulator: Emulator, receiver: WebhookReceiver, browser: requests.Session
) -> None:
    emu = pagecall_emulator
    room = hooked_room(api, receiver, name="Lobby", type="open")
    url = meet_url(emu, room["id"])
    page = visit(browser, url)
    assert page.text("who") == "You are an anonymous guest."
    assert "data-user-id" not in page.main
    entered = press(browser, page, "Enter the meeting")
    (session,) = emu.sessions(room["id"])
    assert "user_id" not in session
    # An anonymous guest is known by the session their page carries, and by nothing else.
    assert parse_qs(urlsplit(entered.headers["Location"]).query)["session_id"] == [session["id"]]
    inside = follow(browser, emu, entered)
    assert inside.buttons == ["Leave"]
    assert visit(browser, url).buttons == ["Enter the meeting"]  # another guest
    payload = receiver.calls[0]["body"]["payload"]
    assert "userId" not in payload and payload["sessionId"] == session["id"]
    left = press(browser, inside, "Leave")
    assert "session_id" not in left.headers["Location"]
    assert receiver.calls[1]["body"]["action"] == "sessionLeft"
    assert "disconnected_at" in emu.sessions(room["id"])[0]


def test_refusals_are_403_pages_and_nobody_enters(
    api: Api, pagecall_emulator: Emulator, receiver: WebhookReceiver, browser: requests.Session
) -> None:
    emu = pagecall_emulator
    members = [{"user_id": "in", "type": "guest"}, {"user_id": "watcher", "type": "monitor"}]
    private = hooked_room(api, receiver, type="private", members=members)
    public = hooked_room(api, receiver, type="public")
    stranger, watcher = token_of(api, "stranger"), token_of(api, "watcher")
    cases = [
        (meet_url(emu, private["id"], stranger), "'stranger' is not invited"),
        (meet_url(emu, private["id"], watcher), "Monitors watch the meeting"),
        (meet_url(emu, private["id"]), "Anonymous participants can only join open rooms"),
        (meet_url(emu, public["id"]), "not public ones"),
    ]
    for url, reason in cases:
        page = visit(browser, url, 403)
        assert page.main["data-pagecall-emulator"] == "error"
        assert reason in page.text("error")
        assert page.buttons == []
        posted = browser.post(url, data={"do": "enter"}, allow_redirects=False, timeout=10)
        assert posted.status_code == 403 and reason in Page(posted).text("error")
    api.update_room(public["id"], is_terminated=True)
    page = visit(browser, meet_url(emu, public["id"], stranger), 403)
    assert "is terminated" in page.text("error")
    assert emu.sessions(private["id"]) == emu.sessions(public["id"]) == []
    assert receiver.calls == []
    # The page and the emulator's join are one rule: the control API refuses a monitor too.
    with pytest.raises(EmulatorError, match="Monitors watch"):
        emu.join(private["id"], user_id="watcher")


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ({}, 400, "The link has no room_id."),
        ({"room_id": "0123456789abcdef01234567"}, 404, "Room '0123456789abcdef01234567' not found"),
        ({"access_token": "x"}, 400, "The link has no room_id."),
        ({"room_id": "OPEN", "access_token": "not-a-token"}, 403, "belongs to no Pagecall user"),
        ({"room_id": "OPEN", "access_token": ""}, 403, "belongs to no Pagecall user"),
        ({"room_id": "OPEN", "access_token": "tökén"}, 403, "belongs to no Pagecall user"),
    ],
)
@pytest.mark.parametrize("page_name", ["meet", "replay"])
def test_bad_links_are_4xx_pages_that_say_why(
    api: Api,
    pagecall_emulator: Emulator,
    browser: requests.Session,
    page_name: str,
    query: dict[str, str],
    status: int,
    message: str,
) -> None:
    room = api.create_room(type="open")
    token_of(api, "someone")  # there are tokens, just not that one
    query = {k: room["id"] if v == "OPEN" else v for k, v in query.items()}
    url = f"{pagecall_emulator.app_url}/{page_name}?{urlencode(query)}"
    page = visit(browser, url, status)
    assert page.main["data-pagecall-emulator"] == "error"
    assert message in page.text("error")
    if page_name == "meet":
        posted = browser.post(url, data={"do": "enter"}, allow_redirects=False, timeout=10)
        assert posted.status_code == status
    assert pagecall_emulator.sessions(room["id"]) == []


def test_wrong_form_or_method_is_a_4xx_page(
    api: Api, pagecall_emulator: Emulator, browser: requests.Session
) -> None:
    room = api.create_room(type="open")
    meet, replay = (
        meet_url(pagecall_emulator, room["id"]),
        meet_url(pagecall_emulator, room["id"], page="replay"),
    )
    bad_form = browser.post(meet, data={"do": "dance"}, allow_redirects=False, timeout=10)
    assert bad_form.status_code == 400 and "do=enter or do=leave" in Page(bad_form).text("error")
    for method, url, allow in [("PUT", meet, "GET, HEAD, POST"), ("POST", replay, "GET, HEAD")]:
        response = browser.request(method, url, timeout=10)
        assert response.status_code == 405
        assert response.headers["Allow"] == allow
        assert response.headers["Content-Type"] == HTML
    assert pagecall_emulator.sessions(room["id"]) == []


def test_the_replay_page(api: Api, pagecall_emulator: Emulator, browser: requests.Session) -> None:
    emu = pagecall_emulator
    room = api.create_room(
        name="Math 101", type="private", members=[{"user_id": "eve", "type": "guest"}]
    )
    token = token_of(api, "eve", name="Eve")
    api.update_room(room["id"], is_terminated=True)  # a replay is for after the meeting
    page = visit(browser, meet_url(emu, room["id"], token, page="replay"))
    assert page.main["data-pagecall-emulator"] == "replay"
    assert page.text("room-name") == "Math 101" and page.text("user-id") == "eve"
    assert page.text("status") == "The recording of this meeting would play here."
    assert page.buttons == []
    refused = visit(browser, meet_url(emu, room["id"], page="replay"), 403)
    assert "needs an access_token" in refused.text("error")
    open_room = api.create_room(name="Open house", type="open")
    anonymous = visit(browser, meet_url(emu, open_room["id"], page="replay"))
    assert anonymous.text("who") == "You are an anonymous guest."


def test_every_value_is_escaped(
    api: Api, pagecall_emulator: Emulator, browser: requests.Session
) -> None:
    emu = pagecall_emulator
    name = "<script>alert('x')</script> & \"co\""
    room = api.create_room(name=name, type="public")
    token = token_of(api, "<b>id</b>", name="<img src=x onerror=alert(1)>")
    page = visit(browser, meet_url(emu, room["id"], token))
    raw = page.response.text
    assert "<script>" not in raw and "<img" not in raw and "<b>" not in raw
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;co&quot;" in raw
    assert page.text("room-name") == name  # what a person reads is the name itself
    assert page.text("title").startswith(name)
    assert page.text("user-name") == "<img src=x onerror=alert(1)>"
    assert page.text("user-id") == "<b>id</b>" and page.main["data-user-id"] == "<b>id</b>"
    inside = follow(browser, emu, press(browser, page, "Enter the meeting"))
    assert inside.buttons == ["Leave"]
    assert emu.sessions(room["id"])[0]["user_id"] == "<b>id</b>"


def test_pages_can_be_framed_and_are_never_faulted(
    api: Api, pagecall_emulator: Emulator, browser: requests.Session
) -> None:
    emu = pagecall_emulator
    room = api.create_room(type="open")
    emu.inject("*", "/meet", status=500, times=None)
    emu.inject("*", "/replay", drop="before", times=None)
    emu.clear_requests()
    for page in ("meet", "replay"):
        response = visit(browser, meet_url(emu, room["id"], page=page)).response
        assert "X-Frame-Options" not in response.headers
        assert "frame-ancestors" not in response.headers["Content-Security-Policy"]
    press(browser, visit(browser, meet_url(emu, room["id"])), "Enter the meeting")
    assert emu.requests == []
    assert [f["hits"] for f in emu.faults] == [0, 0]


def test_the_verbose_log_hides_access_tokens(capsys: pytest.CaptureFixture[str]) -> None:
    with Emulator(verbose=True) as emu, requests.Session() as browser:
        browser.trust_env = False
        api = Api(emu)
        room = api.create_room(type="public")
        token = token_of(api, "dee")
        page = visit(browser, meet_url(emu, room["id"], token))
        follow(browser, emu, press(browser, page, "Enter the meeting"))
        # An escaped name is the same parameter: requests would unescape it, http.client not.
        raw = http.client.HTTPConnection(emu.host, emu.port, timeout=10)
        raw.request("GET", f"/replay?room_id={room['id']}&access%5Ftoken={token}")
        assert raw.getresponse().status == 200
        raw.close()
        api.session.close()
    log = capsys.readouterr().err
    assert token not in log
    assert log.count("access_token=***") == 3  # the page, the form's post, the page again
    assert "access%5Ftoken=***" in log
    assert f"GET /meet?room_id={room['id']}&access_token=*** HTTP/1.1" in log


def test_the_fixture_points_app_url_at_the_emulator(
    pagecall_emulator: Emulator, settings: Any
) -> None:
    assert settings.PAGECALL["APP_URL"] == pagecall_emulator.app_url
    assert pagecall_emulator.app_url == pagecall_emulator.base_url
    assert pagecall_emulator.url == pagecall_emulator.app_url + "/v1"


def _first_lines(stream: IO[str], count: int) -> list[str]:
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in stream], daemon=True).start()
    return [lines.get(timeout=30).strip() for _ in range(count)]


def test_the_command_prints_the_app_url(browser: requests.Session) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "django_pagecall.emulator", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        api_line, app_line = _first_lines(process.stdout, 2)
        assert api_line.startswith("Pagecall emulator listening on http://127.0.0.1:")
        assert app_line.startswith("Pagecall emulator meeting pages at http://127.0.0.1:")
        app_url = app_line.split()[-1]
        assert api_line.split()[-1] == app_url + "/v1"
        response = browser.get(f"{app_url}/meet?room_id=0123456789abcdef01234567", timeout=10)
        assert response.status_code == 404 and response.headers["Content-Type"] == HTML
        process.terminate()
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.django_db(transaction=True)
def test_the_apps_join_link_opens_a_meeting_that_reaches_the_site(
    pagecall_emulator: Emulator, settings: Any, live_server: Any, browser: requests.Session
) -> None:
    settings.PAGECALL = {
        **settings.PAGECALL,
        "WEBHOOK_URL": live_server.url + reverse("pagecall:webhook"),
    }
    room = Room.objects.create(name="Standup", type="public")
    room.refresh_from_db()
    page = visit(browser, room.join_url("frank"))
    assert page.text("room-name") == "Standup" and page.text("user-id") == "frank"
    inside = follow(browser, pagecall_emulator, press(browser, page, "Enter the meeting"))
    assert [d["status"] for d in pagecall_emulator.webhooks] == [200]
    session = Session.objects.get(room=room)
    assert session.user_id == "frank" and session.is_online
    assert session.session_id == inside.text("session-id")
    press(browser, inside, "Leave")
    session.refresh_from_db()
    assert not session.is_online and session.left_at is not None
    replay = visit(browser, room.replay_url("frank"))
    assert replay.text("room-name") == "Standup"
    assert ID.match(replay.main["data-room-id"])
