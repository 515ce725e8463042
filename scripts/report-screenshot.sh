#!/usr/bin/env bash
# A PNG of a run's report.html, taken by headless Chromium.
#
#   scripts/report-screenshot.sh RUN_DIR [OUT.png]
#
# OUT.png defaults to RUN_DIR/report.png. Installs Debian's chromium when
# /usr/bin/chromium is missing (needs root and apt). The page fetches nothing; the
# flags below keep Chromium itself from reaching the network as well.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
    echo "usage: $0 RUN_DIR [OUT.png]" >&2
    exit 254
fi
run_dir=$(cd "$1" && pwd)
out=${2:-$run_dir/report.png}
report=$run_dir/report.html
if [[ ! -f $report ]]; then
    echo "$0: $report does not exist; write it with: squall report $1" >&2
    exit 254
fi
case $out in
    /*) ;;
    *) out=$PWD/$out ;;
esac

if [[ ! -x /usr/bin/chromium ]]; then
    echo "$0: installing chromium (apt-get)" >&2
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
fi

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
/usr/bin/chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --hide-scrollbars --user-data-dir="$profile" --window-size=1400,2400 \
    --screenshot="$out" "file://$report" 2>/dev/null
# Smaller without loss, when optipng is there (docs/report.png went through it).
if command -v optipng >/dev/null; then
    optipng -quiet -o2 "$out"
fi
echo "$out"
