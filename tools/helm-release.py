#!/usr/bin/env python3
# This source file is part of the liverelay open source project
#
# Copyright (c) 2026 the liverelay project authors
# Licensed under Apache License v2.0
#
# SPDX-License-Identifier: Apache-2.0
"""Installs, upgrades and uninstalls a Helm release without a helm binary, with the Helm library itself.

    helm-release.py upgrade --install RELEASE CHART [--namespace NS] [--create-namespace] [--set EXPR]...
                    [--values FILE]... [--wait] [--timeout 5m] [--kubeconfig FILE] [--kube-context NAME]
    helm-release.py install RELEASE CHART [same options]
    helm-release.py uninstall RELEASE [--namespace NS] [--wait] [--timeout 5m] [--ignore-not-found]
    helm-release.py status RELEASE [--namespace NS]

The arguments are the helm CLI's, for the commands tools/up.sh, tools/down.sh and tools/e2e-cluster.sh use, so
those scripts run `helm ARGS` or `helm-release.py ARGS` alike. helm-python (PyPI helm-python-sdk==0.2.2, module
helm_python, the library tools/render-chart.py renders with) wraps Helm's Go SDK, release API included: install,
upgrade and uninstall here are Helm's own actions, with the release stored where helm stores it (a Secret in the
release's namespace; HELM_DRIVER=configmap or memory as for helm), so helm and this script can take over each other's
releases. --wait waits until every Deployment of the release is rolled out and available (`kubectl rollout status`,
which must be on PATH), rather than Helm's own wait, which also waits for a LoadBalancer Service's address that a
cluster without a load balancer never gives. Exits 1 on failure, with Helm's reason.
"""

import argparse
import os
import re
import subprocess
import sys
import time

try:
    import helm_python as helm
    import yaml
except ImportError as error:
    print(
        f"helm-release.py: {error.name} is not installed: pip install helm-python-sdk==0.2.2 pyyaml "
        "(or install the helm binary)",
        file=sys.stderr,
    )
    sys.exit(1)


def seconds(duration):
    """A helm duration (300, 300s, 5m, 1h30m) in seconds."""
    if re.fullmatch(r"\d+", duration):
        return int(duration)
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", duration)
    if not duration or not parts:
        raise argparse.ArgumentTypeError(f"not a duration: {duration} (e.g. 300s, 5m, 1h)")
    hours, minutes, secs = (int(part or 0) for part in parts.groups())
    return hours * 3600 + minutes * 60 + secs


def deep_merge(into, other):
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            deep_merge(into[key], value)
        else:
            into[key] = value


def merged_values(arguments):
    values = {}
    for path in arguments.values:
        with open(path, encoding="utf-8") as handle:
            deep_merge(values, yaml.safe_load(handle) or {})
    for expression in arguments.set:
        deep_merge(values, helm.parse_set_string(expression))
    return values


def kubectl(arguments, *rest):
    command = ["kubectl"]
    if arguments.kubeconfig:
        command += ["--kubeconfig", arguments.kubeconfig]
    if arguments.kube_context:
        command += ["--context", arguments.kube_context]
    return command + list(rest)


def wait_for_deployments(arguments, manifest, deadline):
    """`kubectl rollout status` of every Deployment in the release's manifest, within the deadline."""
    names = [
        document["metadata"]["name"]
        for document in yaml.safe_load_all(manifest or "")
        if isinstance(document, dict) and document.get("kind") == "Deployment"
    ]
    for name in names:
        left = max(1, int(deadline - time.monotonic()))
        print(f"helm-release.py: waiting for deployment/{name} to be available ({left} s left)")
        status = subprocess.run(
            kubectl(arguments, "-n", arguments.namespace, "rollout", "status", f"deployment/{name}",
                    f"--timeout={left}s"),
            check=False,
        ).returncode
        if status != 0:
            print(f"helm-release.py: deployment/{name} did not become available", file=sys.stderr)
            return False
    return True


def install_or_upgrade(config, arguments):
    values = merged_values(arguments)
    deadline = time.monotonic() + arguments.timeout
    exists = True
    try:
        config.status(arguments.release)
    except helm.HelmNotFoundError:
        exists = False
    if arguments.command == "install" and exists:
        print(f"helm-release.py: release {arguments.release} already exists (use upgrade)", file=sys.stderr)
        return 1
    if arguments.command == "upgrade" and not exists and not arguments.install:
        print(f"helm-release.py: release {arguments.release} does not exist (use --install)", file=sys.stderr)
        return 1
    if exists:
        release = config.upgrade(
            arguments.chart, arguments.release, values, namespace=arguments.namespace, timeout=arguments.timeout
        )
        verb = "upgraded"
    else:
        release = config.install(
            arguments.chart,
            arguments.release,
            values,
            namespace=arguments.namespace,
            create_namespace=arguments.create_namespace,
            timeout=arguments.timeout,
        )
        verb = "installed"
    print(
        f'Release "{arguments.release}" {verb} in namespace {arguments.namespace}: '
        f"revision {release.get('revision')}, status {release.get('status')}"
    )
    if arguments.wait and not wait_for_deployments(arguments, release.get("manifest"), deadline):
        return 1
    if release.get("notes"):
        print(release["notes"].rstrip())
    return 0


def uninstall(config, arguments):
    try:
        config.status(arguments.release)
    except helm.HelmNotFoundError:
        if arguments.ignore_not_found:
            print(f"helm-release.py: release {arguments.release} not found in {arguments.namespace}: nothing to do")
            return 0
        print(f"helm-release.py: release {arguments.release} not found in {arguments.namespace}", file=sys.stderr)
        return 1
    config.uninstall(
        arguments.release,
        timeout=arguments.timeout,
        wait="watcher" if arguments.wait else None,
        ignore_not_found=arguments.ignore_not_found,
    )
    print(f'release "{arguments.release}" uninstalled')
    return 0


def status(config, arguments):
    release = config.status(arguments.release)
    print(
        f"NAME: {release.get('name')}\nNAMESPACE: {release.get('namespace')}\nSTATUS: {release.get('status')}\n"
        f"REVISION: {release.get('revision')}\nCHART: {release.get('chart_name')}-{release.get('chart_version')}"
    )
    return 0


def parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-n", "--namespace", default=os.environ.get("HELM_NAMESPACE", "default"))
    common.add_argument("--kubeconfig", default=None, help="a kubeconfig (default: KUBECONFIG, ~/.kube/config)")
    common.add_argument("--kube-context", default=None, help="a context of the kubeconfig")
    common.add_argument("--timeout", type=seconds, default=seconds("5m"), help="e.g. 300s, 5m (default 5m)")
    common.add_argument("--wait", action="store_true")

    top = argparse.ArgumentParser(
        prog="helm-release.py", description=__doc__.splitlines()[0], epilog="Usage:\n" + __doc__.split("\n\n")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = top.add_subparsers(dest="command", required=True)
    for name in ("install", "upgrade"):
        command = commands.add_parser(name, parents=[common])
        command.add_argument("release")
        command.add_argument("chart")
        command.add_argument("--set", action="append", default=[], help="a --set expression, as helm takes it")
        command.add_argument("-f", "--values", action="append", default=[], help="a values file")
        command.add_argument("--create-namespace", action="store_true")
        if name == "upgrade":
            command.add_argument("-i", "--install", action="store_true", help="install if it does not exist")
    command = commands.add_parser("uninstall", parents=[common])
    command.add_argument("release")
    command.add_argument("--ignore-not-found", action="store_true")
    command = commands.add_parser("status", parents=[common])
    command.add_argument("release")
    return top


def main():
    sys.stdout.reconfigure(line_buffering=True)
    arguments = parser().parse_args()
    driver = os.environ.get("HELM_DRIVER") or None
    try:
        with helm.Config(
            kubeconfig_path=arguments.kubeconfig,
            kube_context=arguments.kube_context,
            namespace=arguments.namespace,
            storage_driver=driver,
        ) as config:
            if arguments.command in ("install", "upgrade"):
                return install_or_upgrade(config, arguments)
            if arguments.command == "uninstall":
                return uninstall(config, arguments)
            return status(config, arguments)
    except helm.HelmError as error:
        print(f"helm-release.py: {arguments.command} {arguments.release}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
