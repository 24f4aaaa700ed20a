#!/usr/bin/env bash
# Installs Debian's PostgreSQL server (idempotent) for the service tests; prints its bin directory.
source "$(dirname "$0")/lib.sh"
apt_install postgresql
bindir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d | sort -V | tail -n1)
[[ -x "$bindir/initdb" && -x "$bindir/pg_ctl" ]] || die "postgresql installed but no initdb under $bindir"
printf '%s\n' "$bindir"
