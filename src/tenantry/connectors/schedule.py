"""When a connector runs: once a day at its ``run_at`` (UTC), and after a failure again with back-off.

Who hands a due run out is the one scheduler's (``connectors.register`` asks ``ConnectorService.claim_due``,
which claims through ``core.schedule``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tenantry.core.clock import as_utc
from tenantry.core.errors import Invalid

RETRY_FIRST = timedelta(minutes=5)
RETRY_MAX = timedelta(hours=6)


def next_daily(after: datetime, run_at: str) -> datetime:
    hour, minute = (int(x) for x in run_at.split(":"))
    candidate = as_utc(after).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return candidate if candidate > as_utc(after) else candidate + timedelta(days=1)


def retry_at(failed_at: datetime, failures_in_a_row: int) -> datetime:
    """Back-off after failures: 5 min, 10, 20 … up to 6 hours."""
    # The exponent is capped: past the maximum it changes nothing, and 2**40 times 5 minutes overflows timedelta.
    doubled: int = 2 ** min(max(failures_in_a_row - 1, 0), 16)
    return failed_at + min(RETRY_FIRST * doubled, RETRY_MAX)


def check_run_at(value: str) -> None:
    try:
        hour, minute = (int(x) for x in value.split(":"))
    except ValueError:
        raise Invalid(f"run_at must be HH:MM, not {value!r}") from None
    if not (0 <= hour < 24 and 0 <= minute < 60):
        raise Invalid(f"run_at must be HH:MM, not {value!r}")
