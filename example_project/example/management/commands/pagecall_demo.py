"""``manage.py pagecall_demo``: the whole django-pagecall flow on this machine, unattended, with
the emulator, a served site and a real Celery worker; ``--serve`` runs the site until Ctrl-C.
It exits 0 only when every step happened, else non-zero naming the step; docs/demo.md tells
each step.
"""

from __future__ import annotations

import contextlib
import io
import signal
import socket
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.test.utils import override_settings
from django.urls import reverse
from django.utils import timezone

from django_pagecall.admin.sessions import format_duration
from django_pagecall.admin.users import mask_token
from django_pagecall.client import get_client
from django_pagecall.models import (
    ActiveUser,
    Member,
    MonthlyUsage,
    PagecallUser,
    Room,
    Session,
    SyncState,
    WebhookDelivery,
)
from django_pagecall.sync import user_id_for
from django_pagecall.usage import month_of, monthly_usage
from example.demo import (
    ChildProcess,
    DemoError,
    SiteServer,
    child_env,
    start_emulator,
    start_worker,
    wait_until,
)

STEPS = {"flow": 10, "serve": 5}
HTTP_TIMEOUT = 10  # seconds, for each call to the emulator's control API or the site
PEOPLE = [("admin", "Admin", True), ("alice", "Alice", False), ("bob", "Bob", False)]


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def ensure_free(port: int, what: str, option: str) -> None:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise CommandError(
                f"port {port}, for {what}, is in use ({exc.strerror}): is an earlier demo still "
                f"running? Stop it, or pass {option} with another port."
            ) from exc


class Command(BaseCommand):
    help = (
        "Run the whole flow against the bundled emulator, with a real Celery worker: create a "
        "room with two members, see it synced, play a join and a leave, print the session. "
        "--serve runs the site interactively instead."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--serve", action="store_true", help="run the site (runserver) until Ctrl-C"
        )
        parser.add_argument(
            "--port", type=int, help="the site's port (default: any free port; 8000 with --serve)"
        )
        parser.add_argument(
            "--emulator-port",
            type=int,
            help="the emulator's port (default: any free port; 8790 with --serve)",
        )
        parser.add_argument(
            "--api-url", help="use the emulator already running at this API URL (…/v1)"
        )
        parser.add_argument(
            "--timeout", type=float, default=30.0, help="seconds each wait may take (default 30)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self.timeout = float(options["timeout"])
        self.step_no = 0
        self.steps = STEPS["serve" if options["serve"] else "flow"]
        if options["serve"]:
            # Ports are checked before anything starts, so nothing is left running.
            ensure_free(options["port"] or 8000, "the site", "--port")
            if options["emulator_port"] is None and not options["api_url"]:
                ensure_free(8790, "the emulator", "--emulator-port")
        call_command("migrate", interactive=False, verbosity=0)
        # `kill` stops the demo as Ctrl-C does: the ExitStack then stops the worker and emulator.
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            with contextlib.ExitStack() as stack:
                self.run(stack, options)
        except DemoError as exc:
            raise CommandError(f"step {self.step_no}/{self.steps} failed: {exc}") from exc
        finally:
            signal.signal(signal.SIGTERM, previous)

    # -- output -------------------------------------------------------------------------------

    def step(self, text: str) -> None:
        self.step_no += 1
        self.stdout.write(self.style.MIGRATE_HEADING(f"[{self.step_no}/{self.steps}] ") + text)

    def detail(self, text: str) -> None:
        self.stdout.write(f"      {text}")

    # -- the parts ----------------------------------------------------------------------------

    def run(self, stack: contextlib.ExitStack, options: dict[str, Any]) -> None:
        serve = bool(options["serve"])
        logs = Path(settings.BROKER_DIR) / "logs"
        api_key = settings.PAGECALL["API_KEY"]

        self.step("the Pagecall emulator")
        if options["api_url"]:
            api_url = str(options["api_url"]).rstrip("/")
            self.detail(f"using the one at {api_url}")
        else:
            port = options["emulator_port"] if options["emulator_port"] is not None else 0
            if serve and options["emulator_port"] is None:
                port = 8790
            emulator, api_url = start_emulator(api_key, port, logs / "emulator.log", self.timeout)
            stack.callback(emulator.stop)
            self.detail(f"started: {api_url} (pid {emulator.pid})")
            self.forget_earlier_runs()
        self.emulator_base = api_url.removesuffix("/v1")

        self.step("the site")
        if serve:
            site_url = f"http://127.0.0.1:{options['port'] or 8000}"
        else:
            site = SiteServer(options["port"] or 0).start()
            stack.callback(site.stop)
            site_url = site.url
        webhook_url = f"{site_url}/pagecall/webhook/"
        pagecall = {
            **settings.PAGECALL,
            "API_URL": api_url,
            "WEBHOOK_URL": webhook_url,
            "APP_URL": self.emulator_base,  # the emulator's meeting page, embedded by the site
        }
        # SETTINGS_MODULE too, which runserver's banner prints.
        module = settings.SETTINGS_MODULE
        stack.enter_context(override_settings(PAGECALL=pagecall, SETTINGS_MODULE=module))
        self.detail(f"{site_url}/ (Pagecall's webhooks: {webhook_url})")

        self.step("a Celery worker")
        worker_env = child_env(
            PAGECALL_API_URL=api_url,
            PAGECALL_API_KEY=api_key,
            PAGECALL_WEBHOOK_URL=webhook_url,
            EXAMPLE_DB=str(settings.DATABASES["default"]["NAME"]),
            EXAMPLE_BROKER_DIR=str(settings.BROKER_DIR),
        )
        self.worker: ChildProcess = start_worker(worker_env, logs / "worker.log", self.timeout)
        stack.callback(self.worker.stop)
        self.detail(f"pid {self.worker.pid}, broker {self.broker_label()}")

        people = self.ensure_people()
        if serve:
            self.serve(site_url, people)
            return
        room = self.create_room(people)
        with requests.Session() as browser:
            meeting = self.log_in_and_open_the_room(browser, site_url, room, people["alice"])
            session = self.enter_and_leave(browser, meeting, room)
        self.step("the session")
        self.stdout.write(
            f"session {session.session_id}: {session.user_id} in “{room.name}” "
            f"(Pagecall room {room.pagecall_id}) joined {session.joined_at:%Y-%m-%d %H:%M:%S.%f} "
            f"UTC, left {session.left_at:%Y-%m-%d %H:%M:%S.%f} UTC, "
            f"{format_duration(session.duration)} in the meeting"
        )
        self.import_existing()
        self.attendance_and_usage(room, site_url)
        self.stdout.write(self.style.SUCCESS("demo: every step happened."))

    def import_existing(self) -> None:
        self.step("a room made on Pagecall by another system, brought in by pagecall_import")
        found = get_client().create_room(
            name="Made elsewhere", type="public", members=[{"user_id": "carol", "type": "host"}]
        )
        out = io.StringIO()
        call_command("pagecall_import", stdout=out, stderr=io.StringIO())
        room = Room.objects.get(pagecall_id=found.id)
        members = ", ".join(sorted(room.members.values_list("user_id", flat=True)))
        self.detail(f"{out.getvalue().strip()}")
        self.detail(f"room {room.pk} “{room.name}” ({room.sync_state}), members {members}")

    def attendance_and_usage(self, room: Room, site_url: str) -> None:
        self.step("the room's attendance and this month's usage, as the admin shows them")
        (row,) = room.attendance()
        self.detail(
            f"attendance: {row.user_id}, {row.sessions} session(s), "
            f"{format_duration(timedelta(seconds=row.seconds))} in the room"
        )
        month = month_of(timezone.now())
        following = (month + timedelta(days=31)).replace(day=1)

        def counted() -> bool:
            self.worker.check_alive()
            return any(u.sessions for u in monthly_usage(month, following))

        # The worker counts the room once its meeting has ended (django_pagecall.tasks.count_usage).
        wait_until(counted, self.timeout, "the worker counting the usage", self.worker.tail)
        (usage,) = monthly_usage(month, following)
        self.detail(
            f"usage of {month:%Y-%m}: {usage.meetings} meeting(s), {usage.meeting_minutes} "
            f"minute(s), {usage.sessions} session(s), {usage.active_users} active user(s); "
            f"{site_url}{reverse('admin:django_pagecall_session_usage')}"
        )

    def broker_label(self) -> str:
        if str(settings.CELERY_BROKER_URL).startswith("filesystem"):
            return f"filesystem:// in {settings.BROKER_DIR}"
        return "Redis (REDIS_URL)"

    def forget_earlier_runs(self) -> None:
        rooms = Room.objects.count()
        with transaction.atomic():
            WebhookDelivery.objects.all().delete()
            Room.objects.all().delete()  # members and sessions go with them
            MonthlyUsage.objects.all().delete()
            ActiveUser.objects.all().delete()
            PagecallUser.objects.all().delete()  # their tokens were the old emulator's
        if rooms:
            self.detail(f"removed {rooms} room(s) of earlier runs: a new emulator has none")

    def ensure_people(self) -> dict[str, Any]:
        """admin (a superuser), alice and bob; each one's password is their name."""
        users = {}
        model = get_user_model()
        for username, first_name, is_admin in PEOPLE:
            user = model.objects.filter(username=username).first()
            if user is None:
                user = model.objects.create_user(
                    username=username,
                    password=username,
                    first_name=first_name,
                    is_staff=is_admin,
                    is_superuser=is_admin,
                )
            users[username] = user
        return users

    def create_room(self, people: dict[str, Any]) -> Room:
        self.step("a private room with Alice (host) and Bob (guest), saved in one transaction")
        with transaction.atomic():
            room = Room.objects.create(
                name=f"Demo {timezone.now():%H:%M:%S}", type="private", record=True
            )
            Member.objects.create(room=room, site_user=people["alice"], type="host", name="Alice")
            Member.objects.create(room=room, site_user=people["bob"], type="guest", name="Bob")
        self.detail(f"room {room.pk} “{room.name}” saved: {room.sync_state}")

        def settled() -> bool:
            self.worker.check_alive()
            room.refresh_from_db()
            return room.sync_state in (SyncState.SYNCED, SyncState.FAILED)

        wait_until(settled, self.timeout, "the worker creating the room", self.worker.tail)
        if room.sync_state != SyncState.SYNCED:
            raise DemoError(f"Pagecall refused the room: {room.sync_error}")
        state = self.control("GET", "state")
        on_pagecall = sorted(
            m.get("user_id", "?") for m in state["members"] if m["room_id"] == room.pagecall_id
        )
        if on_pagecall != ["alice", "bob"]:
            raise DemoError(f"the room's members on Pagecall are {on_pagecall}, not alice and bob")
        self.detail(
            f"synced by the worker: Pagecall room {room.pagecall_id}, members "
            + ", ".join(on_pagecall)
        )
        return room

    def log_in_and_open_the_room(
        self, browser: requests.Session, site_url: str, room: Room, alice: Any
    ) -> str:
        """Alice's way in, as her browser takes it; returns the meeting page's URL."""
        self.step("Alice logs in; the room's page embeds the meeting, the join view leads into it")
        login = f"{site_url}/accounts/login/"
        browser.get(login, timeout=HTTP_TIMEOUT).raise_for_status()
        browser.post(
            login,
            {
                "username": "alice",
                "password": "alice",
                "csrfmiddlewaretoken": browser.cookies.get("csrftoken", ""),
            },
            timeout=HTTP_TIMEOUT,
        ).raise_for_status()
        room_path = reverse("pagecall:room", args=[room.pk])
        join_path = reverse("pagecall:join", args=[room.pk])
        if room_path not in browser.get(f"{site_url}/", timeout=HTTP_TIMEOUT).text:
            raise DemoError("“my rooms” does not link to the room's page")
        page = browser.get(site_url + room_path, timeout=HTTP_TIMEOUT).text
        if f'<iframe class="pagecall-room__frame" src="{join_path}"' not in page:
            raise DemoError(f"the room's page does not embed the meeting ({join_path})")
        join = browser.get(site_url + join_path, allow_redirects=False, timeout=HTTP_TIMEOUT)
        link = join.headers.get("Location", "")
        token = PagecallUser.objects.get(user_id=user_id_for(alice)).access_token
        if join.status_code != 302 or f"room_id={room.pagecall_id}" not in link or not token:
            raise DemoError(f"the join view does not lead into the room: {join.status_code}")
        # Printed masked: the token lets whoever holds it in as Alice.
        self.detail(f"{room_path} frames {join_path} → {link.replace(token, mask_token(token))}")
        api = browser.post(
            site_url + reverse("pagecall:api-room-join", args=[room.pk]),
            headers={"X-CSRFToken": browser.cookies.get("csrftoken", "")},
            timeout=HTTP_TIMEOUT,
        )
        if api.status_code != 200 or api.json().get("access_token") != token:
            raise DemoError(f"the join API did not answer Alice's token: {api.status_code}")
        self.detail("the join API answers the same room id and token, for SDKs")
        return link

    def enter_and_leave(self, browser: requests.Session, meeting: str, room: Room) -> Session:
        self.step("Alice enters on the emulator's meeting page; its webhook reaches the site")
        self.meeting_form(browser, meeting, "enter")
        session = wait_until(
            lambda: Session.objects.filter(room=room, joined_at__isnull=False).first(),
            self.timeout,
            "the session being recorded",
            self.last_webhook,
        )
        self.detail(self.delivered("sessionJoined"))
        self.detail(f"session {session.session_id} recorded, online: {session.is_online}")
        time.sleep(1)  # a second in the meeting, so the printed duration is not zero

        self.step("Alice leaves")
        self.meeting_form(browser, meeting, "leave")
        left = wait_until(
            lambda: Session.objects.filter(pk=session.pk, left_at__isnull=False).first(),
            self.timeout,
            "the session's end being recorded",
            self.last_webhook,
        )
        self.detail(self.delivered("sessionLeft"))
        return left

    def meeting_form(self, browser: requests.Session, meeting: str, action: str) -> None:
        """Press the meeting page's button, as the browser in the room page's frame would."""
        try:
            answer = browser.post(meeting, {"do": action}, timeout=HTTP_TIMEOUT)
        except requests.RequestException as exc:
            raise DemoError(f"the emulator's meeting page did not answer: {exc}") from exc
        if answer.status_code != 200:
            raise DemoError(f"the meeting page refused to {action}: {answer.status_code}")

    def delivered(self, action: str) -> str:
        """The emulator's record of the latest ``action`` webhook it sent."""
        webhooks = self.control("GET", "webhooks")["webhooks"]
        sent = [w for w in webhooks if w["body"].get("action") == action]
        if not sent:
            raise DemoError(f"the emulator sent no {action} webhook")
        return f"{action} webhook → {sent[-1]['url']}: {sent[-1]['status']}"

    def last_webhook(self) -> str:
        webhooks = self.control("GET", "webhooks")["webhooks"]
        if not webhooks:
            return " The emulator sent no webhook."
        last = webhooks[-1]
        return f" The last webhook went to {last['url']}: {last['status']} {last.get('error')}."

    def control(self, method: str, path: str, **body: Any) -> Any:
        url = f"{self.emulator_base}/_emulator/{path}"
        try:
            response = requests.request(method, url, json=body or None, timeout=HTTP_TIMEOUT)
        except requests.RequestException as exc:
            raise DemoError(f"the emulator's control API did not answer {url}: {exc}") from exc
        if response.status_code != 200:
            raise DemoError(f"{method} {url}: {response.status_code} {response.text}")
        return response.json()

    # -- --serve --------------------------------------------------------------------------------

    def serve(self, site_url: str, people: dict[str, Any]) -> None:
        self.step("a room for Alice and Bob")
        if not Room.objects.filter(members__site_user=people["alice"]).exists():
            with transaction.atomic():
                room = Room.objects.create(name="Alice and Bob's room", type="private")
                Member.objects.create(room=room, site_user=people["alice"], type="host")
                Member.objects.create(room=room, site_user=people["bob"])
        self.step("the site, until Ctrl-C")
        for line in (
            f"site:     {site_url}/  (log in as alice/alice or bob/bob, then Enter)",
            f"admin:    {site_url}/admin/  (admin/admin)",
            f"emulator: {self.emulator_base}/_emulator/state",
            f"worker:   {self.worker.log_path}",
        ):
            self.detail(line)
        port = site_url.rsplit(":", 1)[-1]
        # Ctrl-C ends the demo; the ExitStack then stops the worker and the emulator.
        with contextlib.suppress(KeyboardInterrupt):
            call_command("runserver", f"127.0.0.1:{port}", use_reloader=False)
