"""Documentation that matches the code, so that it cannot drift again: the settings table is
the one `Settings` makes, the README's function table is the functions `functions/main.py`
defines, and every link and every path the docs name exists."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path
from types import ModuleType

from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
CONFIGURATION = ROOT / "docs" / "configuration.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]


def _settings_table() -> ModuleType:
    # scripts/ is not a package: load the generator from its file, as `python3 scripts/...` runs it.
    spec = importlib.util.spec_from_file_location("settings_table", ROOT / "scripts" / "settings_table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------- the settings table
def test_the_configuration_table_is_the_generated_one():
    gen = _settings_table()
    assert gen.block(CONFIGURATION.read_text()) == gen.table(), (
        "docs/configuration.md's settings table differs from Settings: run "
        ".venv/bin/python scripts/settings_table.py --write"
    )


def test_every_setting_has_a_row_with_its_default():
    # Independent of the generator: a bug there must not hide a missing or wrong row.
    gen = _settings_table()
    rows = CONFIGURATION.read_text().splitlines()
    for name, field in Settings.model_fields.items():
        env = gen.env_names(name, field)[0]
        row = next((ln for ln in rows if ln.startswith(f"| `{env}` |")), None)
        assert row is not None, f"docs/configuration.md has no row for {env}"
        default = "(unset)" if field.default is None else f"`{field.default}`"
        assert row.split(" | ")[1] == default, (env, default, row)


# --------------------------------------------------------------------- the function table
def _decorator_kind(node: ast.FunctionDef) -> str | None:
    for dec in node.decorator_list:
        func = dec.func if isinstance(dec, ast.Call) else dec
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            kind = {
                ("https_fn", "on_request"): "http",
                ("scheduler_fn", "on_schedule"): "schedule",
                ("firestore_fn", "on_document_written"): "trigger",
            }.get((func.value.id, func.attr))
            if kind is not None:
                return kind
    return None


def _http_method(node: ast.FunctionDef) -> str:
    """The ``method=`` an HTTP function hands ``handle``."""
    for call in ast.walk(node):
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "handle":
            for kw in call.keywords:
                if kw.arg == "method" and isinstance(kw.value, ast.Constant):
                    return str(kw.value.value)
    raise AssertionError(f"{node.name} does not call handle(..., method=...)")


def defined_functions() -> dict[str, str]:
    """Every function functions/main.py deploys (the trigger sits inside an ``if``) and its
    kind as the README's table writes it: GET, POST, schedule or trigger."""
    tree = ast.parse((ROOT / "functions" / "main.py").read_text())
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and (kind := _decorator_kind(node)) is not None:
            out[node.name] = _http_method(node) if kind == "http" else kind
    return out


def readme_functions() -> dict[str, str]:
    """The rows of the README's "Functions" section: name and kind column."""
    section = README.read_text().split("\n## Functions\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| \[?`(\w+)`\]?(?:\([^)]*\))? \| ([^|]+) \|", section, flags=re.MULTILINE)
    return {name: kind.strip() for name, kind in rows}


def test_main_py_is_read_as_deployed():
    # The parse must see the HTTP functions and the two that are not, the trigger included.
    found = defined_functions()
    assert sum(k in ("GET", "POST") for k in found.values()) > 10, found
    assert {n for n, k in found.items() if k not in ("GET", "POST")} == {"sweep_idle_sessions", "on_session_ended"}


def test_the_docs_count_the_http_functions_right():
    # The old README said eight long after there were fifteen.
    n = sum(k in ("GET", "POST") for k in defined_functions().values())
    assert f"{n} HTTP functions" in README.read_text()
    wrong = [(d.name, c) for d in DOCS for c in re.findall(r"(\d+) HTTP functions", d.read_text()) if int(c) != n]
    assert not wrong, wrong


def test_the_readme_function_table_is_what_main_py_defines():
    assert readme_functions() == defined_functions()


# --------------------------------------------------------------------- links and paths
_FENCE = re.compile(r"^```.*?^```", flags=re.MULTILINE | re.DOTALL)
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_CODE_PATH = re.compile(r"`((?:shared|functions|tests|scripts|bench|web|docs)/[^`\s]*)`")


def _prose(path: Path) -> str:
    return _FENCE.sub("", path.read_text())


def slugs(path: Path) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings."""
    out: set[str] = set()
    for line in _FENCE.sub("", path.read_text()).splitlines():
        if m := re.match(r"#{1,6} (.+)", line):
            base = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            slug, n = base, 0
            while slug in out:
                n += 1
                slug = f"{base}-{n}"
            out.add(slug)
    return out


def test_every_relative_link_points_at_a_file_that_exists():
    broken = []
    for doc in DOCS:
        for target in _LINK.findall(_prose(doc)):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            file_part, _, anchor = target.partition("#")
            dest = (doc.parent / file_part).resolve() if file_part else doc
            if not dest.exists():
                broken.append(f"{doc.relative_to(ROOT)}: {target}")
            elif anchor and dest.suffix == ".md" and anchor not in slugs(dest):
                broken.append(f"{doc.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, broken


def test_every_path_the_docs_name_exists():
    # The old README named modules that had moved; a path in backticks is checked too.
    missing = []
    for doc in DOCS:
        for token in _CODE_PATH.findall(_prose(doc)):
            path = token.split("::", 1)[0]
            if any(c in path for c in "*<{"):
                continue  # a pattern, not a path
            if not (ROOT / path).exists():
                missing.append(f"{doc.relative_to(ROOT)}: {token}")
    assert not missing, missing
