"""The command line every service shares: ``<service> <command>`` with settings and logging."""

import argparse
from collections.abc import Callable, Mapping
from typing import TypeVar

from signup_shared.logging import configure_logging
from signup_shared.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)


def run(
    prog: str,
    description: str | None,
    settings_class: Callable[[], S],
    commands: Mapping[str, Callable[[S], None]],
    argv: list[str] | None = None,
) -> None:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("command", choices=sorted(commands))
    args = parser.parse_args(argv)
    settings = settings_class()
    configure_logging(f"{prog}-{args.command}", settings.log_level, settings.log_format)
    commands[args.command](settings)
