#!/usr/bin/env bash
# Render `robodetect report` in headless Chromium (Debian: apt-get install chromium) into a PNG.
#
#   scripts/report_screenshot.sh                    # demo store -> docs/report.png
#   scripts/report_screenshot.sh RESULTS.db OUT.png
#
# The demo store: scripts/bench_campaigns.py's small archive (4 prompts replayed in 3-8 calls each,
# 40 unrelated calls; the shared corpus when present, else samples/) plus samples/ itself (real TTS
# robots). Chromium runs with every host name unresolvable, so the page must render offline.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
DB=${1:-}
OUT=${2:-docs/report.png}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
CHROME=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$CHROME" ]; then
  echo "report_screenshot: no Chromium found (apt-get install chromium)" >&2
  exit 1
fi
if [ -z "$DB" ]; then
  python scripts/bench_campaigns.py --prompts 4 --min-replays 3 --max-replays 8 --unrelated 40 --keep "$WORK/demo" >&2
  DB="$WORK/demo/results.db"
  python -m robodetect scan samples --out "$DB" --quiet
fi
python -m robodetect report "$DB" -o "$WORK/report.html"
"$CHROME" --headless --no-sandbox --disable-gpu --hide-scrollbars --host-resolver-rules="MAP * ~NOTFOUND" \
  --window-size=1280,2300 --screenshot="$OUT" "file://$WORK/report.html" >/dev/null 2>&1
echo "wrote $OUT"
