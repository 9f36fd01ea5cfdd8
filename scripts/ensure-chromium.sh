#!/usr/bin/env bash
# Make a headless Chromium available for the explorer's browser tests, then print its path.
#
# Idempotent: installs Debian's `chromium` (and `chromium-driver`) with apt-get only when
# no chromium binary is found (needs root). The tests drive it with Playwright for Python
# through `executable_path` (never `playwright install`: no browser is downloaded).
# Override the binary with PHANTOM_AUCTION_CHROMIUM.
set -euo pipefail

say() { echo "ensure-chromium: $*" >&2; }

find_chromium() {
    for candidate in "${PHANTOM_AUCTION_CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

if path=$(find_chromium); then
    echo "$path"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    say "Chromium is not installed and this is not root: cannot apt-get install chromium"
    exit 1
fi
say "installing Debian's chromium"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq chromium chromium-driver >&2
find_chromium
