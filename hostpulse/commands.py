"""The command allow-list: a command line is split with ``shlex`` and never given to a shell.

``;``, ``|``, ``$(...)`` and ``&&`` stay plain arguments, which no pattern of the default
list accepts, so they are refused rather than interpreted.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable

from hostpulse.errors import ApiError
from hostpulse.settings import Command


def rejected(message: str) -> ApiError:
    return ApiError(403, "command_rejected", message, mode="exec", status="rejected")


def allowed_argv(cmd: str, allow: Iterable[Command]) -> list[str]:
    """The argv to run, if ``cmd`` matches an entry exactly (program and every argument)."""
    try:
        argv = shlex.split(cmd)
    except ValueError as exc:
        raise rejected(f"the command cannot be parsed: {exc}") from None
    if not argv:
        raise rejected("the command is empty")
    program, args = argv[0], argv[1:]
    for entry in allow:
        if entry.program == program and len(entry.args) == len(args):
            if all(re.fullmatch(p, a) for p, a in zip(entry.args, args)):
                return argv
    raise rejected(f"the command {program!r} with these arguments is not on the allow-list")
