# Every target calls a script in ci/, the same scripts .ci/run and the GitHub workflow use.
SHELL := /bin/bash
.DEFAULT_GOAL := help
.PHONY: help setup tools lint test-service chart-check chart-docs test-fast test

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

setup: ## install the pinned Python toolchain and locked dependencies into .venv
	ci/setup-python.sh

tools: ## build every pinned tool into .tools/bin (cached by version; a second run rebuilds nothing)
	ci/tools.sh

lint: setup ## ruff and mypy (strict on service/)
	ci/lint.sh

test-service: setup ## service unit and integration tests
	ci/test-service.sh

chart-check: setup tools ## chart: helm lint (helm 4 + 3), helm-unittest, kubeconform, docs, contract tests
	ci/chart-check.sh

chart-docs: tools ## regenerate the README values table from values.yaml
	ci/chart-docs.sh

# The tiers, in the order `make test` runs them, failing fast.
test-fast: lint test-service ## the checks that need no built tools

test: test-fast chart-check ## everything CI runs
