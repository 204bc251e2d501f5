"""The Korean catalogue: complete, not fuzzy, and compiled (the .mo says what the .po says).

The .po is read with plain Python (no gettext tools at test time); the .mo is what Django loads.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.utils import translation

import django_pagecall
from django_pagecall.admin.rooms import RoomAdmin
from django_pagecall.admin.webhooks import WebhookDeliveryAdmin
from django_pagecall.models import PagecallUser, SyncState, WebhookDelivery

LC_MESSAGES = Path(django_pagecall.__file__).parent / "locale" / "ko" / "LC_MESSAGES"
PO = LC_MESSAGES / "django.po"
MO = LC_MESSAGES / "django.mo"

KEYWORD = re.compile(r"^(msgctxt|msgid|msgid_plural|msgstr(?:\[(\d+)\])?)\s+(\".*\")$")


@dataclass
class Entry:
    flags: set[str] = field(default_factory=set)
    msgctxt: str | None = None
    msgid: str = ""
    msgid_plural: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)


def parse_po(text: str) -> list[Entry]:
    """The entries of a .po file (the header, msgid "", is left out; so are obsolete ones)."""
    entries: list[Entry] = []
    for block in re.split(r"\n\s*\n", text.strip()):
        entry, current = Entry(), None
        for raw in block.splitlines():
            line = raw.strip()
            if line.startswith("#,"):
                entry.flags.update(flag.strip() for flag in line[2:].split(","))
            elif line.startswith("#"):
                continue  # comments and references; "#~" obsolete entries have no keyword left
            elif match := KEYWORD.match(line):
                keyword, index, literal = match.groups()
                current = ("msgstr", int(index or 0)) if keyword.startswith("msgstr") else keyword
                append(entry, current, ast.literal_eval(literal))
            elif line.startswith('"') and current is not None:
                append(entry, current, ast.literal_eval(line))
            else:
                raise ValueError(f"unexpected line in {PO.name}: {raw!r}")
        if current is not None and entry.msgid:
            entries.append(entry)
    return entries


def append(entry: Entry, where: str | tuple[str, int], text: str) -> None:
    if isinstance(where, tuple):
        entry.msgstr[where[1]] = entry.msgstr.get(where[1], "") + text
    else:
        setattr(entry, where, (getattr(entry, where) or "") + text)


@pytest.fixture(scope="module")
def entries() -> list[Entry]:
    return parse_po(PO.read_text(encoding="utf-8"))


def test_the_catalogue_and_its_compiled_form_ship() -> None:
    assert PO.is_file()
    assert MO.is_file(), "run django-admin compilemessages in django_pagecall/"


def test_the_header_is_korean_with_one_plural_form() -> None:
    header = PO.read_text(encoding="utf-8").split("\n\n", 1)[0]
    assert "#, fuzzy" not in header
    assert '"Language: ko\\n"' in header
    assert '"Plural-Forms: nplurals=1; plural=0;\\n"' in header


def test_every_entry_is_translated_and_none_is_fuzzy(entries: list[Entry]) -> None:
    assert len(entries) > 100
    fuzzy = [e.msgid for e in entries if "fuzzy" in e.flags]
    assert fuzzy == []
    untranslated = [e.msgid for e in entries if not e.msgstr or not all(e.msgstr.values())]
    assert untranslated == []
    # Korean has one plural form: one msgstr[0] for each msgid_plural.
    assert all(set(e.msgstr) == {0} for e in entries)


def test_python_format_placeholders_are_kept(entries: list[Entry]) -> None:
    placeholder = re.compile(r"%\(\w+\)[sd]|%[sd]|\{\w+\}")
    for entry in entries:
        expected = sorted(set(placeholder.findall(entry.msgid)))
        assert sorted(set(placeholder.findall(entry.msgstr[0]))) == expected, entry.msgid


def test_real_strings_translate_under_ko() -> None:
    with translation.override("ko"):
        assert str(PagecallUser._meta.verbose_name) == "Pagecall 사용자"
        assert str(WebhookDelivery._meta.verbose_name_plural) == "웹훅 수신 기록"
        assert str(SyncState.SYNCED.label) == "동기화됨"
        assert str(SyncState.FAILED.label) == "실패"
        assert str(RoomAdmin.retry_sync.short_description) == "선택한 회의실 동기화 재시도"  # type: ignore[attr-defined]
        assert (
            str(WebhookDeliveryAdmin.replay_selected.short_description)  # type: ignore[attr-defined]
            == "선택한 웹훅 수신 기록 다시 처리"
        )
        assert (
            translation.ngettext(
                "%(count)d room is being terminated.", "%(count)d rooms are being terminated.", 3
            )
            % {"count": 3}
            == "회의실 3개를 종료하는 중입니다."
        )
    with translation.override("en"):
        assert str(SyncState.SYNCED.label) == "synced"


HANGUL = re.compile("[\uac00-\ud7a3]")


def test_every_model_name_field_label_help_text_and_choice_reads_in_korean() -> None:
    """What the admin shows of the models: a label without a marked verbose name stays English."""
    from django.apps import apps

    untranslated = []
    with translation.override("ko"):
        for model in apps.get_app_config("django_pagecall").get_models():
            meta = model._meta
            texts = {
                f"{model.__name__} verbose_name": meta.verbose_name,
                f"{model.__name__} verbose_name_plural": meta.verbose_name_plural,
            }
            for field in meta.get_fields():
                if not field.concrete or field.auto_created:
                    continue
                name = f"{model.__name__}.{field.name}"
                texts[name] = field.verbose_name
                if field.help_text:
                    texts[f"{name} help_text"] = field.help_text
                for value, label in field.choices or []:
                    texts[f"{name} choice {value}"] = label
            for where, text in texts.items():
                korean = str(text)
                with translation.override("en"):
                    english = str(text)
                # "Pagecall id" reads "Pagecall ID": translated, with no Hangul.
                if not HANGUL.search(korean) and korean == english:
                    untranslated.append(where)
    assert untranslated == []


def test_a_rooms_history_entry_is_written_in_the_staff_members_language(
    admin_client: Any,
) -> None:
    from django.contrib.admin.models import LogEntry
    from django.urls import reverse

    from django_pagecall.models import Room

    room = Room.objects.create(name="수학")  # pending: the test's transaction never commits
    with translation.override("ko"):
        admin_client.post(
            reverse("admin:django_pagecall_room_changelist"),
            {"action": "retry_sync", "_selected_action": [room.pk]},
        )
    entry = LogEntry.objects.get(object_id=str(room.pk))
    assert entry.get_change_message() == "Pagecall과의 동기화를 다시 시도했습니다."


def test_the_compiled_catalogue_matches_the_po(entries: list[Entry]) -> None:
    """What Django serves under "ko" is the .po's msgstr for every msgid: the .mo is current."""
    stale = []
    with translation.override("ko"):
        for entry in entries:
            if entry.msgctxt is not None:
                got = (
                    translation.npgettext(entry.msgctxt, entry.msgid, entry.msgid_plural, 1)
                    if entry.msgid_plural
                    else translation.pgettext(entry.msgctxt, entry.msgid)
                )
            elif entry.msgid_plural:
                got = translation.ngettext(entry.msgid, entry.msgid_plural, 1)
            else:
                got = translation.gettext(entry.msgid)
            if got != entry.msgstr[0] and not django_translates(entry.msgid):
                stale.append((entry.msgid, entry.msgstr[0], got))
    assert stale == []


def django_translates(msgid: str) -> bool:
    """Whether Django's own Korean catalogue has ``msgid`` (an admin template's string): which
    of the two catalogues wins then depends on the Django version."""
    import gettext
    from pathlib import Path

    import django

    root = Path(django.__file__).parent
    for locale in (root / "conf" / "locale", root / "contrib" / "admin" / "locale"):
        catalogue = gettext.translation("django", locale, languages=["ko"], fallback=True)
        if catalogue.gettext(msgid) != msgid:
            return True
    return False


@pytest.mark.django_db(transaction=True)
def test_the_room_page_and_a_join_page_render_in_korean(
    client: Any, pagecall_emulator: Any
) -> None:
    from django.contrib.auth import get_user_model
    from django.urls import reverse

    from django_pagecall.models import Member, Room

    alice = get_user_model().objects.create_user("alice")
    room = Room.objects.create(name="수학", type="private")
    Member.objects.create(room=room, site_user=alice)
    client.force_login(alice)
    korean = {"HTTP_ACCEPT_LANGUAGE": "ko"}
    with translation.override("ko"):
        page = client.get(reverse("pagecall:room", args=[room.pk]), **korean).content.decode()
        assert "회의: 수학" in page  # the frame's title
        assert "새 탭에서 회의 열기" in page
        Room.objects.filter(pk=room.pk).update(pagecall_id=None, sync_state=SyncState.PENDING)
        join = client.get(reverse("pagecall:join", args=[room.pk]), **korean).content.decode()
        assert "이 회의실은 아직 Pagecall에서 준비 중입니다." in join


@pytest.mark.django_db(transaction=True)
def test_the_admin_room_page_renders_in_korean(admin_client: Any, pagecall_emulator: Any) -> None:
    from django.urls import reverse

    from django_pagecall.models import Member, Room

    room = Room.objects.create(name="수학", type="private")
    Member.objects.create(room=room, user_id="alice")
    with translation.override("ko"):
        page = admin_client.get(reverse("admin:django_pagecall_room_change", args=[room.pk]))
        html = page.content.decode()
    assert page.status_code == 200
    for korean in ("동기화됨", "멤버", "입장", "다시보기"):
        assert korean in html, korean


def test_a_system_check_speaks_korean() -> None:
    from django.core.checks import Error
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError
    from django.test import override_settings

    from django_pagecall.checks import check_settings

    config = {
        "API_KEY": "k",
        "WEBHOOK_URL": "https://site.example/pagecall/webhook/",
        "DELIVERY_RETENTION_DAYS": -1,
    }
    korean = Error(
        'PAGECALL["DELIVERY_RETENTION_DAYS"]에는 0 이상의 정수(일 수)만 지정할 수 있습니다. '
        "지정된 값: -1.",
        hint="각 키에 어떤 값을 지정하는지는 문서의 Settings 페이지에 나와 있습니다.",
        id="pagecall.E005",
    )
    with override_settings(PAGECALL=config):
        with translation.override("ko"):
            assert check_settings() == [korean]
            with pytest.raises(SystemCheckError) as raised:
                call_command("check")
        # The hints made at import time follow the language active when the check runs.
        (english,) = check_settings()
    assert f"(pagecall.E005) {korean.msg}" in str(raised.value)
    assert (
        english.msg
        == 'PAGECALL["DELIVERY_RETENTION_DAYS"] must be a whole number of days >= 0, not -1.'
    )
    assert english.hint == "The Settings page of the docs says what each key takes."


@pytest.mark.django_db
def test_the_commands_speak_korean() -> None:
    import io
    from datetime import timedelta

    from django.core.management import CommandError, call_command, load_command_class
    from django.utils import timezone

    def run(*args: str) -> str:
        out = io.StringIO()
        call_command(*args, stdout=out, stderr=io.StringIO())
        return out.getvalue()

    def refusal(*args: str) -> str:
        with pytest.raises(CommandError) as raised:
            run(*args)
        return str(raised.value)

    WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            action="sessionJoined",
            session_id=f"old-{i}",
            state="processed",
            received_at=timezone.now() - timedelta(days=40),
        )
        for i in range(3)
    )
    with translation.override("ko"):
        assert run("pagecall_prune", "--dry-run") == "삭제할 웹훅 수신 기록 3건\n"
        assert run("pagecall_prune") == "웹훅 수신 기록 3건을 삭제했습니다.\n"
        assert run("pagecall_prune") == "삭제할 웹훅 수신 기록이 없습니다.\n"
        nothing = run("pagecall_sync")
        assert (
            refusal("pagecall_prune", "--batch-size", "0") == "--batch-size는 1 이상이어야 합니다."
        )
        unknown = refusal("pagecall_sync", "--workspace", "nowhere")
        command = load_command_class("django_pagecall", "pagecall_prune")
        help_text = command.create_parser("manage.py", "pagecall_prune").format_help()
    assert nothing == "보낼 것이 없습니다: 모든 회의실과 멤버가 Pagecall에 있습니다.\n"
    assert unknown.startswith("Pagecall 워크스페이스 'nowhere'이(가) 설정되어 있지 않습니다")
    assert "오래된 Pagecall 웹훅 수신 기록을 삭제합니다" in help_text
    assert "삭제할 항목의 수만 세고 아무것도 삭제하지 않습니다." in help_text
