# Every target calls a script in ci/, the same scripts .ci/run and the GitHub workflow use.
SHELL := /bin/bash
.DEFAULT_GOAL := help
.PHONY: help setup tools lint test-service test-image test-fast test

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

test-image: setup ## build the image on a Debian-built base and run it under the chart's securityContext
	ci/test-image.sh

# The tiers, in the order `make test` runs them, failing fast.
test-fast: lint test-service ## the checks that need no built tools

test: test-fast test-image ## everything CI runs
