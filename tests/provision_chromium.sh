#!/usr/bin/env bash
# Find or install the Chromium that the browser tests drive (`make browser`, the first step
# of `make test`). In order:
#   1. the system's: $CHROMIUM, chromium, chromium-browser, google-chrome(-stable);
#   2. as root with apt-get (Debian/Ubuntu): Debian's chromium and a small CJK font, so
#      that the glossary's Chinese renders in the screenshots;
#   3. Playwright's own, into the user's cache (no root): playwright install chromium.
# Each candidate must start headless. If none does: one message that says what was tried
# and the command to run, and exit 1, so `make test` stops before its browser tests.
# Usage: tests/provision_chromium.sh [VENV_BIN]   (default .venv/bin)
set -uo pipefail
BIN=${1:-.venv/bin}
tried=()

# Start a Chromium headless (the system's at $1, or Playwright's own when $1 is empty).
starts() {
  "$BIN/python" - "${1:-}" <<'EOF' 2>&1
import sys
from playwright.sync_api import sync_playwright

with sync_playwright() as p:
    path = sys.argv[1] or None
    browser = p.chromium.launch(executable_path=path, timeout=60_000,
                                args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
    print(browser.version)
    browser.close()
EOF
}

system_chromium() {
  if [ -n "${CHROMIUM:-}" ]; then
    [ -x "$CHROMIUM" ] && { echo "$CHROMIUM"; return 0; }
    echo "CHROMIUM=$CHROMIUM is not an executable file; looking further" >&2
  fi
  command -v chromium || command -v chromium-browser || command -v google-chrome \
    || command -v google-chrome-stable
}

try_system() {
  local path out
  path=$(system_chromium) || { tried+=("system Chromium: none on PATH and \$CHROMIUM unset"); return 1; }
  if out=$(starts "$path"); then
    echo "Chromium for the browser tests: $path ($out)"
    return 0
  fi
  tried+=("system Chromium $path does not start: $(tail -n 3 <<<"$out")")
  return 1
}

try_playwright() {
  local out
  if out=$(starts ""); then
    echo "Chromium for the browser tests: Playwright's own ($out)"
    return 0
  fi
  return 1
}

"$BIN/python" -c "import playwright" 2>/dev/null || {
  echo "playwright is not installed in $BIN: make venv (or $BIN/pip install -r requirements.txt)" >&2
  exit 1
}

try_system && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "No Chromium found: installing Debian's (apt-get, as root) ..."
  if DEBIAN_FRONTEND=noninteractive apt-get update -q \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-wqy-microhei; then
    try_system && exit 0
  else
    tried+=("apt-get update && apt-get install -y chromium fonts-wqy-microhei: failed")
  fi
else
  tried+=("apt-get: skipped (needs root and apt-get; you are uid $(id -u))")
fi

try_playwright && exit 0
echo "No Chromium found: installing Playwright's own ($BIN/playwright install chromium) ..."
if "$BIN/playwright" install chromium; then
  try_playwright && exit 0
  tried+=("$BIN/playwright install chromium: installed, but it does not start" \
          "(missing system libraries? as root: $BIN/playwright install-deps chromium)")
else
  tried+=("$BIN/playwright install chromium: failed (no network to its download server?)")
fi

{
  echo
  echo "make test needs a Chromium for its browser tests and could not find or install one."
  echo "Tried:"
  printf '  - %s\n' "${tried[@]}"
  echo "Install one, then run make test again:"
  echo "  as root on Debian/Ubuntu: apt-get update && apt-get install -y chromium fonts-wqy-microhei"
  echo "  or without root:          $BIN/playwright install chromium"
  echo "  or point to a Chrome/Chromium binary: export CHROMIUM=/path/to/chromium"
} >&2
exit 1
