#!/usr/bin/env bash
# One command from a fresh clone: install what geobatch needs, then run the quickstart.
#   bash scripts/setup.sh            # install + quickstart
#   bash scripts/setup.sh --no-run   # install only (CI)
set -euo pipefail
cd "$(dirname "$0")/.."

run_quickstart=1
[[ "${1:-}" == "--no-run" ]] && run_quickstart=0

# System packages: GDAL's command-line tools, used by tests to check our rasters against GDAL;
# rasterio and PIL for the Python loop `npm run bench -- chip-slice` compares with.
if ! command -v gdalinfo >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    [[ "$(id -u)" != "0" ]] && SUDO="sudo"
    echo "setup: installing gdal-bin python3-rasterio python3-pil (apt)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq gdal-bin python3-rasterio python3-pil >/dev/null
  else
    echo "setup: gdalinfo not found and no apt-get: install GDAL's command-line tools to run the GDAL comparison tests" >&2
  fi
fi

node -e 'const [a,b]=process.versions.node.split(".").map(Number); if (a<20||(a===20&&b<9)) { console.error("setup: geobatch needs Node >= 20.9, found "+process.versions.node); process.exit(1) }'

echo "setup: installing npm packages"
npm ci --no-audit --no-fund

# `npx geobatch` and the container entry point run the compiled dist/; `npm run geobatch -- ...`
# runs the sources directly during development
echo "setup: building dist/"
npm run --silent build

if [[ $run_quickstart == 1 ]]; then
  echo "setup: running the quickstart"
  npm run --silent quickstart
fi
