"""Monthly usage kept per workspace and month, counted from the sessions (``usage.count_room``),
so that reports read a row per month and pruned sessions keep their count (docs/meetings.md)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class MonthlyUsage(models.Model):
    """What one workspace used in one month of the site's time zone."""

    workspace = models.CharField(_("workspace"), max_length=64)
    month = models.DateField(_("month"))  # its first day
    sessions = models.PositiveIntegerField(_("number of sessions"), default=0)
    active_users = models.PositiveIntegerField(_("monthly active users"), default=0)
    meetings = models.PositiveIntegerField(_("meetings"), default=0)
    meeting_seconds = models.PositiveBigIntegerField(_("meeting seconds"), default=0)

    class Meta:
        verbose_name = _("monthly usage")
        verbose_name_plural = _("monthly usage")
        constraints = [
            models.UniqueConstraint(fields=["month", "workspace"], name="pagecall_usage_month")
        ]

    def __str__(self) -> str:
        return f"{self.workspace} {self.month:%Y-%m}"


class ActiveUser(models.Model):
    """A Pagecall user id with a session in the month: counted once in ``active_users``."""

    workspace = models.CharField(_("workspace"), max_length=64)
    month = models.DateField(_("month"))
    user_id = models.CharField(_("Pagecall user id"), max_length=255)

    class Meta:
        verbose_name = _("active user")
        verbose_name_plural = _("active users")
        constraints = [
            models.UniqueConstraint(
                fields=["month", "workspace", "user_id"], name="pagecall_active_user_once"
            )
        ]

    def __str__(self) -> str:
        return _("%(user)s in %(workspace)s %(month)s") % {
            "user": self.user_id,
            "workspace": self.workspace,
            "month": f"{self.month:%Y-%m}",
        }
