#!/usr/bin/env bash
# Installs the clients the end-to-end tests drive (curl, wget) from Debian.
set -euo pipefail
missing=()
for bin in curl wget; do command -v "$bin" >/dev/null || missing+=("$bin"); done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
