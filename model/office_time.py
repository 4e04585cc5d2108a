"""Office time: petition offices count days (deadlines, date filters, hot-topic windows) in Beijing time."""

from __future__ import annotations

from datetime import timedelta, timezone

CHINA_STANDARD_TIME = timezone(timedelta(hours=8))
