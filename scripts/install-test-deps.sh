#!/usr/bin/env bash
# Installs the clients the end-to-end and registry tests drive from Debian:
# curl, wget, pip (python3 -m pip), npm and chromium (the status page test
# opens it headless), each only when it is missing.
set -euo pipefail
missing=()
for bin in curl wget; do command -v "$bin" >/dev/null || missing+=("$bin"); done
command -v python3 >/dev/null || missing+=(python3)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
command -v chromium >/dev/null || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
