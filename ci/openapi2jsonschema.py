#!/usr/bin/env python3
"""Writes strict standalone JSON schemas for kubeconform from a Kubernetes swagger.json.

One file per kind and group-version, named as kubeconform looks them up
(`<kind>[-<group>]-<version>.json`, lower case). Each file carries the definitions it reaches, so
$refs stay local; every object schema with properties gets `additionalProperties: false` (strict),
and `format: int-or-string` becomes "string or integer", as the API server accepts.
Standard library only: it runs before the project's virtualenv exists.
"""

import copy
import json
import sys
from pathlib import Path
from typing import Any

REF_PREFIX = "#/definitions/"
# Quantity is a string in the swagger spec, but the API server also accepts numbers (cpu: 1).
NUMBER_OR_STRING = {"oneOf": [{"type": "string"}, {"type": "number"}]}


def strict(node: Any) -> Any:
    """Returns node with additionalProperties false on every object that lists properties."""
    if isinstance(node, dict):
        out = {k: strict(v) for k, v in node.items()}
        if out.get("format") == "int-or-string":
            return {"oneOf": [{"type": "string"}, {"type": "integer"}], **_doc(out)}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [strict(v) for v in node]
    return node


def _doc(node: dict[str, Any]) -> dict[str, Any]:
    return {"description": node["description"]} if "description" in node else {}


def refs(node: Any) -> set[str]:
    """Names of the definitions node refers to directly."""
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF_PREFIX):
            found.add(ref[len(REF_PREFIX) :])
        for v in node.values():
            found |= refs(v)
    elif isinstance(node, list):
        for v in node:
            found |= refs(v)
    return found


def reachable(definitions: dict[str, Any], root: str) -> set[str]:
    seen: set[str] = set()
    todo = [root]
    while todo:
        name = todo.pop()
        if name in seen or name not in definitions:
            continue
        seen.add(name)
        todo.extend(refs(definitions[name]))
    return seen


def main(swagger_file: str, out_dir: str) -> int:
    definitions: dict[str, Any] = json.loads(Path(swagger_file).read_text())["definitions"]
    for name, schema in definitions.items():
        if name.endswith("api.resource.Quantity"):
            definitions[name] = {**NUMBER_OR_STRING, **_doc(schema)}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    for name, schema in definitions.items():
        for gvk in schema.get("x-kubernetes-group-version-kind", []):
            group, version, kind = gvk["group"], gvk["version"], gvk["kind"]
            api_version = f"{group}/{version}" if group else version
            doc = copy.deepcopy(schema)
            props = doc.setdefault("properties", {})
            props["apiVersion"] = {**props.get("apiVersion", {}), "enum": [api_version]}
            props["kind"] = {**props.get("kind", {}), "enum": [kind]}
            deps = reachable(definitions, name) - {name}
            doc["definitions"] = {d: definitions[d] for d in sorted(deps)}
            doc["$schema"] = "http://json-schema.org/draft-04/schema#"
            suffix = f"-{group.split('.')[0]}-{version}" if group else f"-{version}"
            (out / f"{kind.lower()}{suffix}.json").write_text(json.dumps(strict(doc), indent=1))
            written += 1
    print(f"wrote {written} schemas to {out}")
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
