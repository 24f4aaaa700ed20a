#!/usr/bin/env bash
# Benchmark of the service against its peers with wrk (from Debian); writes bench/results.md,
# bench/results.json and docs/bench-results.png.
source "$(dirname "$0")/lib.sh"
apt_install wrk
cd "$REPO_ROOT"
python bench/bench.py "$@"
