"""Ages and periods as people type them on the command line: `90m`, `12h`, `3d`."""

import re
from datetime import timedelta

from django.core.management.base import CommandError

UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """`90m`, `12h` or `3d` (`stripe_replay_events --since`, `prune --older-than`); a
    CommandError in words for anything else, so either command says what it wants."""
    match = re.fullmatch(r"(\d+)([mhd])", text.strip())
    if not match or int(match[1]) == 0:
        raise CommandError(f"A duration is written as 90m, 12h or 3d, not {text!r}.")
    return timedelta(**{UNITS[match[2]]: int(match[1])})
