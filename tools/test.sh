#!/usr/bin/env bash
#===----------------------------------------------------------------------===//
#
# This source file is part of the liverelay open source project
#
# Copyright (c) 2026 the liverelay project authors
# Licensed under Apache License v2.0
#
# SPDX-License-Identifier: Apache-2.0
#
#===----------------------------------------------------------------------===//
#
# Runs every test, the README's test command. First checks each peer the tests run (ffmpeg, ffprobe, nginx with its
# RTMP and stream modules, openssl, rtmpdump, kubectl, curl, shellcheck, chromium, firefox-esr, pkg-config and the
# libav* headers, the libssl, libsrtp2 and zlib headers the WebRTC module builds against, whip-client with GStreamer's
# WebRTC elements, python3 with helm_python and kubernetes_validate). What is missing is installed when this user may
# (root, or passwordless sudo, with apt-get: Debian packages; the Python modules go into a virtual environment in
# .build-python/, which needs no privilege); otherwise the script names what is missing, prints the commands that
# install it, and exits 1. Then `swift test` with the arguments given, and LIVERELAY_REQUIRE_PEERS=1, so a test whose
# peer is missing fails instead of skipping.
#
# Usage: tools/test.sh [--install-only | --check-only] [swift test arguments...]
#   --install-only  install what is missing and stop (.ci/run, as root, before the tests run unprivileged)
#   --check-only    check, install nothing, do not run the tests (exit 1 if something is missing)
set -euo pipefail

script_dir=${BASH_SOURCE[0]%/*}
[[ $script_dir == "${BASH_SOURCE[0]}" ]] && script_dir=.
cd "$script_dir/.."
root=$(pwd)

# The one list of what the tests need. Debian packages per peer are in check_peers below; the Python modules
# (PyPI, pinned) here.
python_packages=(helm-python-sdk==0.2.2 kubernetes-validate==1.37.0)
python_modules="helm_python, kubernetes_validate, jsonschema, yaml"
venv="${LIVERELAY_PYTHON_VENV:-$root/.build-python}"
# Where the tests look for nginx's dynamic modules (Tests/PeerTestSupport/NginxRTMP.swift).
nginx_module_dirs=(/usr/lib/nginx/modules /usr/share/nginx/modules /usr/local/lib/nginx/modules)

mode=run
while [[ $# -gt 0 ]]; do
    case $1 in
        --install-only) mode=install ;;
        --check-only) mode=check ;;
        -h|--help) sed -n '13,23p' "${BASH_SOURCE[0]}"; exit 0 ;;
        --) shift; break ;;
        *) break ;;
    esac
    shift
done

say() { echo "test.sh: $*"; }

# A virtual environment made earlier holds the Python modules: its python3 comes first.
if [[ -x $venv/bin/python3 ]]; then
    PATH="$venv/bin:$PATH"
fi

have() { command -v "$1" > /dev/null 2>&1; }
have_nginx() { have nginx || [[ -x /usr/sbin/nginx ]]; }
nginx_module() {
    local directory
    for directory in "${nginx_module_dirs[@]}"; do
        [[ -r $directory/$1 ]] && return 0
    done
    return 1
}
have_chromium() { [[ -x ${CHROMIUM:-/usr/bin/chromium} ]]; }
have_firefox() { [[ -x ${FIREFOX:-/usr/bin/firefox-esr} ]]; }
# The GStreamer elements a WHIP publisher pipeline (whip-client's) needs: webrtcbin over libnice, x264, Opus.
have_gstreamer_webrtc() {
    local element
    for element in webrtcbin x264enc rtph264pay opusenc rtpopuspay videotestsrc audiotestsrc; do
        gst-inspect-1.0 --exists "$element" || return 1
    done
}
python_modules_present() { python3 -c "import $python_modules" > /dev/null 2>&1; }
can_make_venv() { python3 -c 'import ensurepip, venv' > /dev/null 2>&1; }

missing=()
packages=()
# want WHAT "DEBIAN PACKAGES" CHECK...: WHAT is missing unless CHECK succeeds.
want() {
    local what=$1 debian=$2
    shift 2
    if ! "$@" > /dev/null 2>&1; then
        missing+=("$what")
        local package
        for package in $debian; do
            [[ " ${packages[*]} " == *" $package "* ]] || packages+=("$package")
        done
    fi
}

check_peers() {
    missing=()
    packages=()
    want "ffmpeg" ffmpeg have ffmpeg
    want "ffprobe" ffmpeg have ffprobe
    want "nginx" nginx have_nginx
    want "nginx's RTMP module (ngx_rtmp_module.so in ${nginx_module_dirs[*]})" libnginx-mod-rtmp \
        nginx_module ngx_rtmp_module.so
    want "nginx's stream module (ngx_stream_module.so in ${nginx_module_dirs[*]})" libnginx-mod-stream \
        nginx_module ngx_stream_module.so
    want "openssl" openssl have openssl
    want "rtmpdump" rtmpdump have rtmpdump
    want "kubectl" kubernetes-client have kubectl
    want "curl" curl have curl
    want "shellcheck" shellcheck have shellcheck
    want "chromium (${CHROMIUM:-/usr/bin/chromium})" chromium have_chromium
    want "firefox-esr (${FIREFOX:-/usr/bin/firefox-esr})" firefox-esr have_firefox
    want "pkg-config" pkg-config have pkg-config
    want "the libavformat, libavcodec and libavutil headers (pkg-config)" \
        "libavformat-dev libavcodec-dev libavutil-dev" pkg-config --exists libavformat libavcodec libavutil
    # The build itself links these (Sources/CWebRTCSSL, Sources/CSRTP), so CI installs them before building.
    want "the libssl, libsrtp2 and zlib headers (pkg-config)" "libssl-dev libsrtp2-dev zlib1g-dev" \
        pkg-config --exists libssl libcrypto libsrtp2 zlib
    want "whip-client (simple-whip-client)" simple-whip-client have whip-client
    # Tests/WebRTCTests/WHIPClientTests.swift builds a small preload for Debian 12's whip-client (libsoup 2 and 3).
    want "a C compiler (cc)" gcc have cc
    want "GStreamer's WebRTC, x264 and Opus elements (gst-inspect-1.0)" \
        "gstreamer1.0-tools gstreamer1.0-plugins-bad gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-nice" \
        have_gstreamer_webrtc
    want "python3" python3 have python3
    python_missing=false
    if ! python_modules_present; then
        python_missing=true
        missing+=("the Python modules $python_modules (PyPI: ${python_packages[*]})")
        # They go into a virtual environment, which Debian's python3 makes with python3-venv.
        if ! have python3 || ! can_make_venv; then
            [[ " ${packages[*]} " == *" python3-venv "* ]] || packages+=(python3-venv)
        fi
    fi
}

# Whether this user may install Debian packages, and the command prefix that does it.
apt_prefix=()
may_install_packages() {
    have apt-get || return 1
    if [[ $(id -u) -eq 0 ]]; then
        apt_prefix=(env DEBIAN_FRONTEND=noninteractive)
    elif have sudo && sudo -n true > /dev/null 2>&1; then
        apt_prefix=(sudo -n env DEBIAN_FRONTEND=noninteractive)
    else
        return 1
    fi
}

install_packages() {
    say "installing Debian packages: ${packages[*]}"
    # Debian's nginx package starts its own server on port 80 where it can; the tests start their own nginx on
    # ephemeral ports. Keep services from starting during the install (the usual policy-rc.d, removed again after).
    local policy=/usr/sbin/policy-rc.d placed=false
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' | "${apt_prefix[@]}" tee "$policy" > /dev/null
        "${apt_prefix[@]}" chmod 0755 "$policy"
        placed=true
    fi
    local status=0
    {
        "${apt_prefix[@]}" apt-get update -q &&
            "${apt_prefix[@]}" apt-get install -y -q --no-install-recommends "${packages[@]}"
    } || status=$?
    if [[ $placed == true ]]; then
        "${apt_prefix[@]}" rm -f "$policy"
    fi
    [[ $status -eq 0 ]] || { say "apt-get failed (exit $status)" >&2; exit 1; }
    # Should the packaged nginx have started anyway (a policy-rc.d of another mind), stop it. Not running is fine.
    if [[ " ${packages[*]} " == *" nginx "* ]]; then
        if [[ -d /run/systemd/system ]]; then
            "${apt_prefix[@]}" systemctl stop nginx > /dev/null 2>&1 || true
        elif [[ -x /etc/init.d/nginx ]]; then
            "${apt_prefix[@]}" /etc/init.d/nginx stop > /dev/null 2>&1 || true
        fi
    fi
}

install_python_modules() {
    say "installing ${python_packages[*]} into the virtual environment $venv"
    python3 -m venv "$venv"
    "$venv/bin/python3" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        "${python_packages[@]}"
    PATH="$venv/bin:$PATH"
}

report_missing() {
    echo "test.sh: the tests need what is missing here:" >&2
    printf '  - %s\n' "${missing[@]}" >&2
    echo "Install it with:" >&2
    if [[ ${#packages[@]} -gt 0 ]]; then
        echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${packages[*]}" >&2
    fi
    if [[ $python_missing == true ]]; then
        echo "  python3 -m venv ${venv#"$root/"} && ${venv#"$root/"}/bin/pip install ${python_packages[*]}" >&2
    fi
    echo "(tools/test.sh installs them itself when run as root or with passwordless sudo.)" >&2
}

check_peers
if [[ ${#missing[@]} -gt 0 && $mode != check ]]; then
    if [[ ${#packages[@]} -gt 0 ]] && may_install_packages; then
        install_packages
        check_peers
    fi
    # The virtual environment needs no privilege: only python3 with venv.
    if [[ $python_missing == true ]] && have python3 && can_make_venv; then
        install_python_modules
        check_peers
    fi
fi
if [[ ${#missing[@]} -gt 0 ]]; then
    report_missing
    exit 1
fi
if [[ $mode == check ]]; then
    say "every test peer is present"
    exit 0
fi
if [[ $mode == install ]]; then
    say "every test peer is present (python3: $(command -v python3))"
    exit 0
fi

if ! have swift; then
    echo "test.sh: swift is not on PATH: install the Swift toolchain (https://www.swift.org/install/linux/)" >&2
    exit 1
fi
# Every test runs: one whose peer is missing fails with what it misses instead of skipping.
export LIVERELAY_REQUIRE_PEERS=1
exec swift test "$@"
