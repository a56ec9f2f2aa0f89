#!/bin/bash
# Render a `contra report` page headlessly with Chromium (Debian: apt-get install chromium)
# to a PNG, and check that every image on the page loaded.
#   tools/render-report.sh RUN/report [out.png]
set -euo pipefail
dir=$(cd "$1" && pwd)
shot=${2:-$dir/report-rendered.png}
page="file://$dir/report.html"
flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars)
body=$(chromium "${flags[@]}" --dump-dom "$page" 2>/dev/null | grep -o '<body[^>]*>')
total=$(sed -n 's/.*data-images-total="\([0-9]*\)".*/\1/p' <<<"$body")
loaded=$(sed -n 's/.*data-images-loaded="\([0-9]*\)".*/\1/p' <<<"$body")
chromium "${flags[@]}" --window-size=1200,${HEIGHT:-5200} --screenshot="$shot" "$page" 2>/dev/null
echo "images loaded: ${loaded:-?} of ${total:-?}; screenshot: $shot"
[[ -n "$total" && "$total" -gt 0 && "$loaded" == "$total" ]]
