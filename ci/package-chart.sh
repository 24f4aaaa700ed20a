#!/usr/bin/env bash
# Packages the chart into DEST (default build/release) with the chart users' README (ci/chart-readme.py) in place of the repository's.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
dest=${1:-build/release}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# helm package applies .helmignore; the unpacked result gets the chart README and is packaged again.
helm package . --destination "$work/raw" >/dev/null
tar -xzf "$work"/raw/*.tgz -C "$work"
name=$(awk '$1 == "name:" { print $2; exit }' Chart.yaml)
python3 ci/chart-readme.py >"$work/$name/README.md"
mkdir -p "$dest"
helm package "$work/$name" --destination "$dest"
