"""docs/configuration.md, generated from the fields of Settings (`task-manager check-config
--markdown`); a test fails when the committed copy is stale."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from task_manager.settings import Settings, environment_variable


@dataclass(frozen=True)
class VariableDoc:
    """One row of docs/configuration.md."""

    variable: str
    type: str
    default: str
    description: str


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) or str(annotation)
    text = str(annotation) if "[" in str(annotation) or "|" in str(annotation) else text
    return (
        text.replace("typing.", "")
        .replace("pydantic.types.", "")
        .replace("pathlib.", "")
        .replace("NoneType", "None")
    )


def variable_docs() -> list[VariableDoc]:
    """Documentation of each variable, in declaration order."""
    rows = []
    for name, info in Settings.model_fields.items():
        default = info.default
        if isinstance(default, SecretStr):
            default = default.get_secret_value()
        if isinstance(default, bool):
            shown = str(default).lower()
        elif default is None:
            shown = "(unset)"
        else:
            shown = str(default)
        rows.append(
            VariableDoc(
                variable=environment_variable(name),
                type=_type_name(info.annotation),
                default=shown,
                description=info.description or "",
            )
        )
    return rows


def render_configuration_markdown() -> str:
    """The text of docs/configuration.md."""
    lines = [
        "# Configuration",
        "",
        "<!-- Generated from service/task_manager/settings.py by "
        "`task-manager check-config --markdown`; a test fails when it is stale. -->",
        "",
        "The service reads only these environment variables. `task-manager check-config` prints",
        "the effective values (secrets redacted) and exits 2 naming the variable when one is",
        "invalid. Boolean values accept `true`/`false`, `1`/`0`, `yes`/`no`.",
        "",
        "| Variable | Type | Default | Description |",
        "| --- | --- | --- | --- |",
    ]
    for row in variable_docs():
        typ = row.type.replace("|", "\\|")
        lines.append(f"| `{row.variable}` | `{typ}` | `{row.default}` | {row.description} |")
    lines.append("")
    return "\n".join(lines)
