"""Financial years and month arithmetic, shared by the generator, the indicators and the risk models."""

from __future__ import annotations

import calendar
import datetime as dt


def fy_label(year_start: int) -> str:
    """Financial-year label such as 2021-22 for the year starting in April 2021."""
    return f"{year_start}-{(year_start + 1) % 100:02d}"


def add_months(d: dt.date, months: int) -> dt.date:
    """The same day `months` later (or earlier, if negative), on the month's last day if it is shorter."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return dt.date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def strftime_parts(date_format: str) -> list[str]:
    """A strftime format split into its parts: each `%X` directive, and each other character alone
    ("%d/%m/%Y" -> ["%d", "/", "%m", "/", "%Y"])."""
    parts, i = [], 0
    while i < len(date_format):
        step = 2 if date_format[i] == "%" and i + 1 < len(date_format) else 1
        parts.append(date_format[i:i + step])
        i += step
    return parts
