#!/usr/bin/env bash
# Takes docs/status-page.png: runs the status page test, which starts a gateway whose four
# upstreams are driven into the four states (healthy, down, stale, degraded), and with
# BELAY_STATUS_SCREENSHOT set it also screenshots the page in headless Chromium (1280x1000).
# Needs the Debian package chromium. On a shared machine run it under the build lock:
#   flock /tmp/belay-build.lock bash scripts/status-screenshot.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
    echo "status-screenshot: needs chromium (apt-get install -y chromium)" >&2
    exit 2
fi
swift build --build-tests
BELAY_STATUS_SCREENSHOT="$PWD/docs/status-page.png" \
    swift test --skip-build --filter 'StatusPageTests/chromiumShowsEveryStateAfterTheScriptRan'
echo "status-screenshot: wrote docs/status-page.png"
