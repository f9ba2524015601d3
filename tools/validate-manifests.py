#!/usr/bin/env python3
# This source file is part of the liverelay open source project
#
# Copyright (c) 2026 the liverelay project authors
# Licensed under Apache License v2.0
#
# SPDX-License-Identifier: Apache-2.0
"""Validates Kubernetes manifests the way an API server would, offline.

    validate-manifests.py [--kubernetes-version 1.32] [--crd FILE]... FILE_OR_DIR...

Every document in every FILE (YAML or JSON; a directory means every *.yaml, *.yml and *.json in it) is checked:
- built-in kinds against the official Kubernetes JSON schemas of kubernetes-validate, strictly (unknown fields fail);
- kinds defined by a --crd file (KEDA's ScaledObject, our LiveStream) against that CRD's openAPIV3Schema;
- CustomResourceDefinitions against the apiextensions.k8s.io/v1 schema and the rules of a structural schema
  (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema),
  defaults included.
Prints one line per problem and exits 1 if there was any, 0 otherwise.
"""

import argparse
import json
import os
import sys

import jsonschema
import kubernetes_validate
import yaml


def load_documents(path):
    paths = []
    if os.path.isdir(path):
        for name in sorted(os.listdir(path)):
            if name.endswith((".yaml", ".yml", ".json")):
                paths.append(os.path.join(path, name))
    else:
        paths.append(path)
    for file in paths:
        with open(file, encoding="utf-8") as handle:
            for index, document in enumerate(yaml.safe_load_all(handle)):
                if document is not None:
                    yield f"{file}#{index}", document


def crd_schemas(crd):
    """(apiVersion, kind) -> openAPIV3Schema of every version of a CRD."""
    spec = crd["spec"]
    result = {}
    for version in spec["versions"]:
        schema = version.get("schema", {}).get("openAPIV3Schema")
        if schema is not None:
            result[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = schema
    return result


def openapi_to_jsonschema(schema):
    """OpenAPI v3 (as CRDs write it) to draft 4 JSON Schema: `nullable` allows null, x- extensions are dropped."""
    if isinstance(schema, list):
        return [openapi_to_jsonschema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {}
    for key, value in schema.items():
        if key.startswith("x-kubernetes-") or key in ("default", "example", "description"):
            continue
        if key == "properties":
            result[key] = {name: openapi_to_jsonschema(child) for name, child in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            result[key] = openapi_to_jsonschema(value) if isinstance(value, dict) else value
        elif key in ("allOf", "anyOf", "oneOf"):
            result[key] = [openapi_to_jsonschema(child) for child in value]
        elif key == "nullable":
            continue
        else:
            result[key] = value
    if schema.get("x-kubernetes-int-or-string"):
        result.pop("type", None)
        result["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.get("nullable") and "type" in result:
        result["type"] = [result["type"], "null"]
    # A structural schema prunes unknown fields instead of refusing them; an operator must not write fields that
    # would be pruned, so they count as errors here.
    if result.get("type") == "object" and "properties" in result and not schema.get(
        "x-kubernetes-preserve-unknown-fields"
    ):
        result.setdefault("additionalProperties", False)
    return result


def validate_against(schema, document, where):
    converted = openapi_to_jsonschema(schema)
    if "properties" in converted:
        converted["properties"]["apiVersion"] = {"type": "string"}
        converted["properties"]["kind"] = {"type": "string"}
        converted["properties"]["metadata"] = {"type": "object"}
    validator = jsonschema.Draft4Validator(converted, format_checker=jsonschema.FormatChecker())
    problems = []
    for error in sorted(validator.iter_errors(document), key=lambda e: list(e.path)):
        path = ".".join(str(part) for part in error.absolute_path) or "(root)"
        problems.append(f"{where}: {path}: {error.message}")
    return problems


COMBINATOR_FORBIDDEN = ("type", "default", "additionalProperties", "nullable", "description")


def structural_problems(schema, path, in_combinator=False, is_root=False):
    problems = []
    if not isinstance(schema, dict):
        return [f"{path}: not a schema object"]
    special = schema.get("x-kubernetes-int-or-string") or schema.get("x-kubernetes-preserve-unknown-fields")
    if in_combinator:
        for key in COMBINATOR_FORBIDDEN:
            if key in schema:
                problems.append(f"{path}: {key} is not allowed inside allOf/anyOf/oneOf/not")
    elif not schema.get("type") and not special:
        problems.append(f"{path}: type must be set (structural schema)")
    if "properties" in schema and "additionalProperties" in schema:
        problems.append(f"{path}: properties and additionalProperties are mutually exclusive")
    if schema.get("type") == "array" and "items" not in schema and not in_combinator:
        problems.append(f"{path}: an array needs items")
    for name, child in schema.get("properties", {}).items():
        if is_root and name == "metadata":
            extra = set(child) - {"type", "description"}
            if extra or any(key not in ("name", "generateName") for key in child.get("properties", {})):
                problems.append(f"{path}.metadata: only type (object) may be set for metadata")
            continue
        problems += structural_problems(child, f"{path}.{name}", in_combinator)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            problems += structural_problems(schema[key], f"{path}.{key}", in_combinator)
    int_or_string = [{"type": "integer"}, {"type": "string"}]
    for key in ("allOf", "anyOf", "oneOf"):
        if key == "anyOf" and schema.get("x-kubernetes-int-or-string") and schema.get(key) == int_or_string:
            continue  # the one pattern a structural schema allows with types inside a combinator
        for index, child in enumerate(schema.get(key, [])):
            problems += structural_problems(child, f"{path}.{key}[{index}]", True)
    if isinstance(schema.get("not"), dict):
        problems += structural_problems(schema["not"], f"{path}.not", True)
    if schema.get("x-kubernetes-list-type") == "map":
        items = schema.get("items", {})
        for key in schema.get("x-kubernetes-list-map-keys", []):
            item = items.get("properties", {}).get(key)
            if item is None:
                problems.append(f"{path}: list-map key {key} is not a property of the items")
            elif key not in items.get("required", []) and "default" not in item:
                problems.append(f"{path}: list-map key {key} must be required or defaulted")
    if schema.get("x-kubernetes-list-type") == "set":
        if schema.get("items", {}).get("type") in ("object", "array"):
            problems.append(f"{path}: a set must list scalars")
    if "default" in schema:
        converted = openapi_to_jsonschema(schema)
        for error in jsonschema.Draft4Validator(converted).iter_errors(schema["default"]):
            problems.append(f"{path}: default {json.dumps(schema['default'])} is invalid: {error.message}")
    for rule in schema.get("x-kubernetes-validations", []):
        if not rule.get("rule"):
            problems.append(f"{path}: x-kubernetes-validations entry without rule")
    return problems


def check_crd(document, where):
    problems = []
    for version in document.get("spec", {}).get("versions", []):
        schema = version.get("schema", {}).get("openAPIV3Schema")
        if schema is None:
            problems.append(f"{where}: version {version.get('name')} has no openAPIV3Schema")
            continue
        if schema.get("type") != "object":
            problems.append(f"{where}: openAPIV3Schema must be of type object")
        problems += [f"{where}: {p}" for p in structural_problems(schema, "openAPIV3Schema", is_root=True)]
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubernetes-version", default="1.32")
    parser.add_argument("--crd", action="append", default=[], help="a CRD whose kinds are validated by its schema")
    parser.add_argument("paths", nargs="+")
    arguments = parser.parse_args()

    schemas = {}
    for path in arguments.crd:
        for _, document in load_documents(path):
            if document.get("kind") == "CustomResourceDefinition":
                schemas.update(crd_schemas(document))

    problems = []
    count = 0
    for path in arguments.paths:
        for where, document in load_documents(path):
            count += 1
            key = (document.get("apiVersion"), document.get("kind"))
            where = f"{where} ({key[1]} {document.get('metadata', {}).get('name', '?')})"
            if key in schemas:
                problems += validate_against(schemas[key], document, where)
                continue
            try:
                kubernetes_validate.validate(document, arguments.kubernetes_version, strict=True)
            except kubernetes_validate.ValidationError as error:
                path_text = ".".join(str(part) for part in error.path) or "(root)"
                problems.append(f"{where}: {path_text}: {error.message}")
            except kubernetes_validate.SchemaNotFoundError as error:
                problems.append(f"{where}: no schema: {error}")
            if key[1] == "CustomResourceDefinition":
                problems += check_crd(document, where)
    for problem in problems:
        print(problem)
    print(f"{count} documents, {len(problems)} problems")
    return 1 if problems or count == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
