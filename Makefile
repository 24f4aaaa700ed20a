# Every target calls a script in ci/, the same scripts .ci/run and the GitHub workflow use.
SHELL := /bin/bash
.DEFAULT_GOAL := help
.PHONY: help run bench faults setup tools lint sast audit workflow-lint test-ci test-service chart-check chart-docs test-image test-rules test-e2e dev test-fast test

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

run: setup ## start the API on http://127.0.0.1:8080 (SQLite under ./var, a dev token); Ctrl-C stops it
	ci/run-service.sh

bench: setup ## benchmark the service against its peers (wrk); writes bench/results.md, results.json and docs/bench-results.png
	ci/bench.sh

faults: setup ## inject each fault (database outage, full disk, collector, abusive clients, tokens, SIGTERM, SIGKILL) under load; writes docs/faults.md
	ci/faults.sh

setup: ## install the pinned Python toolchain and locked dependencies into .venv
	ci/setup-python.sh

tools: ## build every pinned tool into .tools/bin (cached by version; a second run rebuilds nothing)
	ci/tools.sh

.PHONY: crds
crds: ## generate the Prometheus Operator and Gateway API CRDs into .tools/crds (cached by version)
	ci/crds.sh

lint: setup ## ruff and mypy (strict on service/)
	ci/lint.sh

sast: setup ## bandit over service/ (fails on medium or high severity)
	ci/sast.sh

audit: setup ## pip-audit of every locked dependency in uv.lock (fails on any known vulnerability)
	ci/audit.sh

workflow-lint: setup ## actionlint (with shellcheck) over .github/workflows
	ci/workflow-lint.sh

test-ci: setup ## workflows pinned and thin; every README command exercised (tests/ci)
	ci/test-ci.sh

test-service: setup ## service unit and integration tests
	ci/test-service.sh

chart-check: setup tools ## chart: helm lint (helm 4 + 3), helm-unittest, kubeconform, docs, contract tests
	ci/chart-check.sh

chart-docs: tools ## regenerate the README values table from values.yaml
	ci/chart-docs.sh

test-image: setup ## build the image on a Debian-built base and run it under the chart's securityContext
	ci/test-image.sh

test-rules: setup tools ## dashboard structure and promtool tests of the alert rules (also run by chart-check)
	ci/test-rules.sh

test-e2e: setup tools ## real collector, Jaeger, app and Prometheus from the rendered chart (tests/e2e)
	ci/test-e2e.sh

dev: setup ## the observability stack locally (app on SQLite, collector, Jaeger, Prometheus; builds the tools it runs); Ctrl-C stops it
	ci/dev.sh

.PHONY: up down cluster-up cluster-down cluster-test
up: setup tools ## the chart on a real local node: cluster, images, values-dev.yaml install, helm test; prints how to reach it
	ci/up.sh

down: ## stop the local cluster and undo everything it changed on this machine
	ci/cluster-down.sh

cluster-up: setup tools ## start the local cluster (control plane and a real node) without installing anything; KUBECONFIG=.cluster/kubeconfig
	ci/cluster-up.sh

cluster-down: ## the same as make down
	ci/cluster-down.sh

cluster-test: setup tools ## tests/cluster: cluster-up, images, the chart suite on real pods, down (always), host checked
	ci/cluster-test.sh

# The tiers, in the order `make test` runs them, failing fast.
test-fast: lint sast audit test-ci test-service ## the checks that need no built tools

test: lint sast audit workflow-lint test-ci test-service chart-check test-image test-e2e cluster-test ## everything CI runs
