#!/usr/bin/env bash
# Benchmark of the service against a plain Flask dict baseline with wrk (Debian); writes bench/results.md.
source "$(dirname "$0")/lib.sh"
apt_install wrk
cd "$REPO_ROOT"
python bench/bench.py "$@"
