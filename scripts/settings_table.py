#!/usr/bin/env python3
"""Print (or, with --write, refresh in README.md) the configuration table from shared/settings.py."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.settings import Settings  # noqa: E402

START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"


def table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        env = alias.choices[0] if alias is not None else name.upper()  # type: ignore[union-attr]
        also = ""
        if alias is not None:
            also = " (also read from " + ", ".join(f"`{c}`" for c in alias.choices[1:]) + ")"  # type: ignore[union-attr]
        default = "(unset)" if field.default is None else f"`{field.default}`"
        rows.append(f"| `{env}` | {default} | {field.description}{also} |")
    return "\n".join(rows)


def main() -> None:
    if "--write" not in sys.argv:
        print(table())
        return
    readme = ROOT / "README.md"
    text = readme.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{table()}\n{END}{tail}")


if __name__ == "__main__":
    main()
