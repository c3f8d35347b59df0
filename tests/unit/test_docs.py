"""Documentation that matches the code: every setting is in the README's table."""

from pathlib import Path

from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def env_names() -> list[str]:
    out = []
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        out.append(alias.choices[0] if alias is not None else name.upper())  # type: ignore[union-attr]
    return out


def test_every_setting_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    missing = [n for n in env_names() if f"`{n}`" not in readme]
    assert not missing, f"README.md's configuration table lacks {missing}"


def test_readme_defaults_match_the_code():
    readme = (ROOT / "README.md").read_text()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        env = alias.choices[0] if alias is not None else name.upper()  # type: ignore[union-attr]
        row = next((ln for ln in readme.splitlines() if ln.startswith(f"| `{env}`")), None)
        assert row is not None, env
        default = "" if field.default is None else str(field.default)
        assert f"`{default}`" in row or (default == "" and "(unset)" in row), (env, default, row)
