#!/usr/bin/env bash
# Builds the CI tools: actionlint (pinned, from the Go module proxy) and Debian's shellcheck, which actionlint runs on `run:` steps.
source "$(dirname "$0")/lib.sh"
apt_install shellcheck
go_install actionlint "$ACTIONLINT_VERSION" "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
