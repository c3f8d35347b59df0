#!/usr/bin/env python3
"""Print (or, with --write, refresh in docs/configuration.md) the settings table made from
``shared.settings.Settings``: the table is generated so that it cannot say what the code
does not (tests/unit/test_docs.py holds the file to this output).
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import AliasChoices
from pydantic.fields import FieldInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.settings import Settings  # noqa: E402

DOC = ROOT / "docs" / "configuration.md"
START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"


def env_names(name: str, field: FieldInfo) -> list[str]:
    """The variables a setting is read from, the documented one first."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [c for c in alias.choices if isinstance(c, str)]
    if isinstance(alias, str):
        return [alias]
    return [name.upper()]


def table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        env, *others = env_names(name, field)
        also = " (also read from " + ", ".join(f"`{c}`" for c in others) + ")" if others else ""
        default = "(unset)" if field.default is None else f"`{field.default}`"
        rows.append(f"| `{env}` | {default} | {field.description}{also} |")
    return "\n".join(rows)


def block(text: str) -> str:
    """The table between the markers of ``text``."""
    _, rest = text.split(START, 1)
    inner, _ = rest.split(END, 1)
    return inner.strip("\n")


def main() -> None:
    if "--write" not in sys.argv:
        print(table())
        return
    text = DOC.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{START}\n{table()}\n{END}{tail}")


if __name__ == "__main__":
    main()
