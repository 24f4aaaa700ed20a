#!/usr/bin/env bash
# Chart tier: lint (helm 4 + helm 3), helm-unittest, kubeconform on every values combination, docs, contract.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

for tool in helm helm3 helm-unittest kubeconform helm-docs; do
  command -v "$tool" >/dev/null || die "$tool missing: run make tools"
done
read -r -a kube_versions <<<"$KUBE_SCHEMA_VERSIONS"
schemas="$REPO_ROOT/.tools/schemas"
for v in "${kube_versions[@]}"; do
  [[ -f "$schemas/$v-standalone-strict/deployment-apps-v1.json" ]] || die "no Kubernetes $v schemas: run make tools"
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The scenarios every check renders: the shipped values files and one file per optional part.
scenarios=("default:" "dev:values-dev.yaml" "prod:values-prod.yaml")
for f in tests/chart/values/*.yaml; do scenarios+=("$(basename "$f" .yaml):$f"); done
values_args() { [[ -z "$1" ]] || printf -- '-f\n%s\n' "$1"; }

log "Chart.lock matches Chart.yaml"
# The subcharts live unpacked in charts/, which is where helm loads them from; `helm dependency
# build` would add a packaged copy of each next to it, so it runs on a scratch copy, only to prove
# that the committed lock is in sync.
mkdir "$work/lock" && cp -r Chart.yaml Chart.lock charts "$work/lock/"
helm dependency build "$work/lock" >/dev/null 2>"$work/lock.err" || { cat "$work/lock.err" >&2; die "Chart.lock is out of sync: run helm dependency update and remove charts/*.tgz"; }

for h in helm helm3; do
  for s in default dev prod; do
    file=""; [[ $s == default ]] || file="values-$s.yaml"
    log "$h lint --strict ($s)"
    mapfile -t args < <(values_args "$file")
    "$h" lint --strict "${args[@]}" . >"$work/lint.out" 2>&1 || { cat "$work/lint.out" >&2; die "$h lint failed for $s"; }
  done
  # Each subchart on its own values (the parent's lint validates them as set from the parent).
  for sub in charts/*/; do
    log "$h lint --strict ($sub)"
    "$h" lint --strict "$sub" >"$work/lint.out" 2>&1 || { cat "$work/lint.out" >&2; die "$h lint failed for $sub"; }
  done
done

log "helm-unittest"
helm-unittest --strict --file 'tests/chart/*_test.yaml' --with-subchart=false .

# CRD kinds (ServiceMonitor, PrometheusRule, HTTPRoute) validate against schemas converted from
# the CRDs that ci/crds.sh generates from the operators' Go modules.
ci/crds.sh >/dev/null
ci/crd-schemas.sh
crd_schemas="$REPO_ROOT/.tools/schemas/crds"

api_versions=(--api-versions monitoring.coreos.com/v1 --api-versions gateway.networking.k8s.io/v1)
for v in "${kube_versions[@]}"; do
  for h in helm helm3; do
    for sc in "${scenarios[@]}"; do
      name=${sc%%:*} file=${sc#*:}
      mapfile -t args < <(values_args "$file")
      out="$work/$h-$v-$name.yaml"
      "$h" template tm . --namespace tasks --kube-version "$v" "${api_versions[@]}" "${args[@]}" >"$out"
      kubeconform -strict -summary -output text -kubernetes-version "${v#v}" \
        -schema-location "$schemas/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
        -schema-location "$crd_schemas/{{ .Group }}-{{ .ResourceKind }}-{{ .ResourceAPIVersion }}.json" "$out" >"$work/kc.out" 2>&1 || { cat "$work/kc.out" >&2; die "kubeconform: $name rendered by $h for Kubernetes $v is invalid"; }
      log "kubeconform $v $h $name: $(tail -n1 "$work/kc.out")"
    done
  done
done

log "README values table is generated from values.yaml"
"$REPO_ROOT/ci/chart-docs.sh" --check

log "contract and rendering tests"
# The dashboards and alert rules run through their own script (make test-rules), the rest here.
pytest tests/chart --ignore=tests/chart/test_dashboards.py --ignore=tests/chart/test_prometheus_rules.py "$@"
"$REPO_ROOT/ci/test-rules.sh"
