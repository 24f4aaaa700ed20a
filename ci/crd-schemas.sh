#!/usr/bin/env bash
# Converts the CRDs of .tools/crds (ci/crds.sh) into strict JSON schemas for kubeconform.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

# kubeconform's own converter, from the kubeconform module at the pinned version.
src=$(go mod download -json "github.com/yannh/kubeconform@$KUBECONFORM_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[[ -f "$src/scripts/openapi2jsonschema.py" ]] || die "no scripts/openapi2jsonschema.py in kubeconform $KUBECONFORM_VERSION"
shopt -s nullglob
crds=("$REPO_ROOT"/.tools/crds/*.yaml)
((${#crds[@]})) || die "no CRDs in .tools/crds: run ci/crds.sh"

out="$REPO_ROOT/.tools/schemas/crds"
rm -rf "$out" && mkdir -p "$out"
# Names as the chart-check schema-location template expects: <group>-<kind>-<version>.json.
(cd "$out" && DENY_ROOT_ADDITIONAL_PROPERTIES=1 FILENAME_FORMAT='{fullgroup}-{kind}-{version}' \
  python "$src/scripts/openapi2jsonschema.py" "${crds[@]}" >/dev/null)
for want in monitoring.coreos.com-servicemonitor-v1 monitoring.coreos.com-prometheusrule-v1 gateway.networking.k8s.io-httproute-v1; do
  [[ -f "$out/$want.json" ]] || die "no schema $want.json from the CRDs in .tools/crds"
done
