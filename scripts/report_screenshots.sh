#!/usr/bin/env bash
# Screenshots of a run report as a desk and a phone show it, in headless Chromium:
#   bash scripts/report_screenshots.sh reports/2017-07-01/report.html [out_dir]
# writes <out_dir>/report-1280.png (1280 px wide) and report-390.png (390 px), first screen each.
# Chromium is not a Python dependency: on Debian, `apt-get install chromium` (docs/reports.md).
set -euo pipefail
report=${1:?usage: scripts/report_screenshots.sh REPORT_HTML [OUT_DIR]}
out=${2:-$(dirname "$report")/screenshots}
[ -f "$report" ] || { echo "no such report: $report" >&2; exit 2; }
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$browser" ] || { echo "no Chromium on PATH (Debian: apt-get install chromium)" >&2; exit 2; }
mkdir -p "$out"
url="file://$(cd "$(dirname "$report")" && pwd)/$(basename "$report")"
for size in 1280,1100 390,1500; do
  width=${size%%,*}
  "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size="$size" \
    --screenshot="$out/report-$width.png" "$url" >/dev/null 2>&1
  echo "[screenshots] $out/report-$width.png"
done
