"""Is a changed contract still compatible with the messages and readers already out there?

Every published (type, version) has its JSON Schema frozen in a file (``freeze``). A change to
the model behind it must keep two kinds of reader working:

1. **Deployed consumers read new messages** (``Direction.CONSUMERS``): every message the changed
   producer may send must still be valid for the frozen schema. Checked as *new ⊆ frozen*.
2. **The changed reader reads old messages** (``Direction.REPLAY``): messages published before the
   change sit in queues, retry queues and dead-letter queues (and ``signup-dlq replay`` sends them
   again), and producers are not all upgraded at once; every message valid for the frozen schema
   must still be valid for the new one. Checked as *frozen ⊆ new*.

The check is structural, node by node from the root (``data.plan`` is the path of a field), and
conservative: what it cannot prove compatible it reports. The rules, each named in the report:

- ``removed-field``: a field of the frozen schema is gone (a rename is a removal plus an
  addition). Old readers that require it reject new messages; old readers that do not require it
  silently lose it. Reported for any removed field.
- ``no-longer-required``: a field the frozen schema requires is optional now, so the producer may
  leave it out and old readers reject the message.
- ``new-required-field``: the new schema requires a field the frozen one did not (a new field, or
  an optional one made required); messages published before the change lack it. (Old readers
  alone would not mind, as they ignore unknown fields: the replay direction forbids it.)
- ``type-widened`` / ``type-narrowed``: the set of JSON types a value may have grew (``null``
  allowed, ``string`` changed to ``integer``, which is both) or shrank. ``integer`` is a
  ``number``.
- ``enum-widened`` / ``enum-narrowed``: ``enum``/``const`` values added (old readers reject the new
  value) or removed (the new reader rejects old messages that carry it); adding or removing the
  restriction itself counts as widening or narrowing.
- ``constraint-loosened`` / ``constraint-tightened``: a bound (``minimum``, ``maxLength``,
  ``minItems``, ...) moved, or was added or removed, letting more or fewer values through.
- ``constraint-changed``: ``pattern``, ``format``, ``multipleOf`` or any other keyword this module
  does not interpret changed; it cannot tell the direction, so it reports both.
- ``extra-properties``: one side forbids properties it does not list (``additionalProperties:
  false``) and the other sends them.

Documentation keywords (``title``, ``description``, ``default``, ``examples``, ``deprecated``) are
ignored. What this allows within a version: adding an optional field, documentation changes.
Anything else is a new version: a new model class, registered beside the old one, with its own
frozen file.

    python -m signup_contracts.compat             # check against the schemas this package ships
    python -m signup_contracts.compat --freeze    # write missing frozen files (in a checkout)
    python -m signup_contracts.compat DIRECTORY   # the same with another folder
"""

import argparse
import json
import sys
from importlib.resources.abc import Traversable
from pathlib import Path

from signup_contracts import catalog
from signup_contracts.compat_rules import Break, Direction, check
from signup_contracts.envelope import registered_events
from signup_contracts.schemas import freeze, frozen_file_name, message_schema

__all__ = ["Break", "Direction", "check", "check_frozen", "main"]


def check_frozen(directory: Path | Traversable | None = None) -> list[str]:
    """Problems of the registered contracts against the frozen schemas in ``directory``."""
    directory = catalog.frozen_schemas_folder() if directory is None else directory
    problems = []
    events = registered_events()
    expected = {frozen_file_name(t, v): cls for (t, v), cls in events.items()}
    for name, event in expected.items():
        path = directory / name
        if not path.is_file():
            problems.append(
                f"{event.event_type} v{event.version} has no frozen schema {path}: "
                f"run python -m signup_contracts.compat --freeze {directory}"
            )
            continue
        for found in check(json.loads(path.read_text()), message_schema(event)):
            problems.append(f"{event.event_type} v{event.version}: {found}")
    listed = directory.iterdir() if directory.is_dir() else iter(())
    for path in sorted((p for p in listed if p.name.endswith(".json")), key=lambda p: p.name):
        if path.name not in expected:
            problems.append(
                f"{path} is frozen but no registered contract publishes it: a "
                "published version was removed or renamed"
            )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m signup_contracts.compat",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument(
        "directory",
        type=Path,
        nargs="?",
        help="folder of frozen schemas (default: the one shipped in this package)",
    )
    parser.add_argument(
        "--freeze",
        action="store_true",
        help="write the schemas of versions that have no frozen file yet",
    )
    args = parser.parse_args(argv)
    directory: Path = args.directory or Path(str(catalog.frozen_schemas_folder()))
    if args.freeze:
        for path in freeze(directory):
            sys.stdout.write(f"froze {path}\n")
    problems = check_frozen(directory)
    for problem in problems:
        sys.stdout.write(f"{problem}\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
