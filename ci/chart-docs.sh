#!/usr/bin/env bash
# Regenerates the README's values table from values.yaml comments (helm-docs); --check fails when stale.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
command -v helm-docs >/dev/null || die "helm-docs missing: run make tools"

start='<!-- values-table:start -->' end='<!-- values-table:end -->'
if ! grep -qxF "$start" README.md || ! grep -qxF "$end" README.md; then die "README.md lacks the $start / $end markers"; fi

# Dry run prints the table instead of writing a README per chart.
table=$(helm-docs --dry-run --skip-version-footer --log-level warning --chart-search-root . \
  --chart-to-generate . --template-files ci/helm-docs-values.gotmpl)
[[ "$table" == *"| Key | Type | Default | Description |"* ]] || die "helm-docs printed no values table"
# Every value carries a `# --` comment: a row with an empty description names the culprit.
undocumented=$(grep -E '^\| .* \|[[:space:]]*\|$' <<<"$table" | cut -d'|' -f2 || true)
[[ -z "$undocumented" ]] || die "values without a '# --' comment in values.yaml:$undocumented"

new=$(mktemp)
trap 'rm -f "$new"' EXIT
awk -v start="$start" -v end="$end" -v table="$table" '
  $0 == start { print; print ""; print table; print ""; skip = 1; next }
  $0 == end { skip = 0 }
  !skip { print }
' README.md >"$new"

if [[ "${1:-}" == "--check" ]]; then
  diff -u README.md "$new" >&2 || die "README values table is stale: run ci/chart-docs.sh (make chart-docs)"
else
  cp "$new" README.md
fi
