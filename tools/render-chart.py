#!/usr/bin/env python3
# This source file is part of the liverelay open source project
#
# Copyright (c) 2026 the liverelay project authors
# Licensed under Apache License v2.0
#
# SPDX-License-Identifier: Apache-2.0
"""Renders a Helm chart offline with the real Helm library (helm-python's libhelm_c), as `helm template` would.

    render-chart.py [--set EXPR]... [--values FILE]... [--name RELEASE] [--namespace NS] [--crds] [--lint]
                    --output DIR CHART

Writes every rendered object to DIR as NNN-KIND-NAME.yaml (one object per file; the chart's crds/ too with
--crds), Helm hooks (objects annotated helm.sh/hook, which Helm creates only at their event, never at install) to
DIR/hooks/ the same way, the rendered NOTES.txt as DIR/NOTES.txt, and prints one line per object. --lint first runs Helm's linter
strictly with the same values and fails on any warning or error. Exits 1 on a render or lint failure.
"""

import argparse
import os
import re
import sys

import helm_python as helm
import yaml


def merged_values(arguments):
    values = {}
    for path in arguments.values:
        with open(path, encoding="utf-8") as handle:
            deep_merge(values, yaml.safe_load(handle) or {})
    for expression in arguments.set:
        deep_merge(values, helm.parse_set_string(expression))
    return values


def deep_merge(into, other):
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            deep_merge(into[key], value)
        else:
            into[key] = value


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", action="append", default=[], help="a --set expression, as helm takes it")
    parser.add_argument("--values", action="append", default=[], help="a values file")
    parser.add_argument("--name", default="liverelay")
    parser.add_argument("--namespace", default="liverelay-system")
    parser.add_argument("--crds", action="store_true", help="write the chart's CRDs too")
    parser.add_argument("--lint", action="store_true", help="lint strictly first")
    parser.add_argument("--output", required=True)
    parser.add_argument("chart")
    arguments = parser.parse_args()

    values = merged_values(arguments)
    if arguments.lint:
        report = helm.lint(arguments.chart, values, strict=True, namespace=arguments.namespace)
        problems = [m for m in report.get("messages") or [] if m.get("severity", 0) >= 2]
        for message in problems:
            print(f"lint: {message.get('path')}: {message.get('error')}", file=sys.stderr)
        for error in report.get("errors") or []:
            print(f"lint: {error}", file=sys.stderr)
        if problems or report.get("errors"):
            return 1

    chart = helm.Chart.load(arguments.chart)
    try:
        # What `helm install` does first: the values against the chart's values.schema.json.
        chart.validate_schema(chart.merge_values(values))
        rendered = chart.render(
            values, name=arguments.name, namespace=arguments.namespace, revision=1, is_install=True
        )
    except helm.HelmError as error:
        print(f"render-chart.py: {error}", file=sys.stderr)
        return 1

    os.makedirs(arguments.output, exist_ok=True)
    sources = []
    if arguments.crds:
        sources += [(crd["filename"], crd["data"]) for crd in chart.crds]
    for path in sorted(rendered):
        if path.endswith("NOTES.txt"):
            with open(os.path.join(arguments.output, "NOTES.txt"), "w", encoding="utf-8") as handle:
                handle.write(rendered[path])
        elif path.endswith((".yaml", ".yml")):
            sources.append((path, rendered[path]))
    count = 0
    for source, text in sources:
        for document in yaml.safe_load_all(text):
            if not document:
                continue
            count += 1
            kind = document.get("kind", "Unknown")
            name = document.get("metadata", {}).get("name", "unnamed")
            file = f"{count:03d}-{kind}-{re.sub(r'[^A-Za-z0-9.-]', '_', name)}.yaml"
            directory = arguments.output
            if "helm.sh/hook" in (document.get("metadata", {}).get("annotations") or {}):
                directory = os.path.join(arguments.output, "hooks")
                os.makedirs(directory, exist_ok=True)
            with open(os.path.join(directory, file), "w", encoding="utf-8") as handle:
                handle.write(f"# Source: {source}\n")
                yaml.safe_dump(document, handle, sort_keys=False)
            print(f"{kind} {name} ({source})")
    if count == 0:
        print("render-chart.py: the chart rendered no objects", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
