#!/usr/bin/env bash
# One command from a fresh clone: install what geobatch needs, then run the quickstart.
#   bash scripts/setup.sh            # install + quickstart
#   bash scripts/setup.sh --no-run   # install only (CI)
set -euo pipefail
cd "$(dirname "$0")/.."

run_quickstart=1
[[ "${1:-}" == "--no-run" ]] && run_quickstart=0

# System packages from Debian (there is no PyPI here): GDAL's command-line tools and gdal_retile.py, which tests use
# to check our rasters against GDAL; rasterio and PIL for the Python loop `npm run bench --
# chip-slice` compares with; PyTorch and torchvision (CPU, 1.13 / 0.14) with OpenBLAS for the
# trainer of jobs/train/, which the quickstart and the training tests run on this CPU; osmium-tool,
# which makes the .osm.pbf fixtures of the OpenStreetMap label tests and checks them; chromium,
# the headless browser the map viewer's page tests drive (test/helpers/browser.ts).
apt_packages=(gdal-bin python3-gdal python3-rasterio python3-pil python3-torch python3-torchvision libopenblas0-pthread osmium-tool chromium)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if (( ${#missing[@]} > 0 )); then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    [[ "$(id -u)" != "0" ]] && SUDO="sudo"
    echo "setup: installing ${missing[*]} (apt)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: no apt-get; install ${missing[*]} (GDAL tools, rasterio, PIL, PyTorch + torchvision, osmium, Chromium) by hand" >&2
  fi
fi

node -e 'const [a,b]=process.versions.node.split(".").map(Number); if (a<20||(a===20&&b<9)) { console.error("setup: geobatch needs Node >= 20.9, found "+process.versions.node); process.exit(1) }'

echo "setup: installing npm packages"
# onnxruntime-node would otherwise download CUDA libraries at install time; the CPU build it
# ships is what verifies ONNX exports here
ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm ci --no-audit --no-fund

# `npx geobatch` and the container entry point run the compiled dist/; `npm run geobatch -- ...`
# runs the sources directly during development
echo "setup: building dist/"
npm run --silent build

if [[ $run_quickstart == 1 ]]; then
  echo "setup: running the quickstart"
  npm run --silent quickstart
fi
