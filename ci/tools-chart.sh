#!/usr/bin/env bash
# Builds the pinned chart tools (helm 4, helm 3 as helm3, helm-unittest, kubeconform, helm-docs).
source "$(dirname "$0")/lib.sh"

# Several checkouts on one machine share the cache: one build at a time (the schema generation
# below writes into a shared directory), the others wait and then find the tools built.
exec 9>"$TOOLS_CACHE/.chart.lock"
flock 9

# helm reports its own version and, for helm 3, the default Kubernetes version of `helm template`
# and `helm lint` (Capabilities.KubeVersion) only through ldflags, as its Makefile sets them: the
# minor of the k8s.io/client-go it is built with. Helm 4 reads that from its build info itself.
client_go_minor() { # MODULE@VERSION -> minor of the k8s.io/client-go it requires
  local gomod
  gomod=$(go mod download -json "$1" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  awk '$1 == "k8s.io/client-go" { split($2, v, "."); print v[2]; exit }' "$gomod"
}

go_install helm "$HELM_VERSION" "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" \
  -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION"

minor3=$(client_go_minor "helm.sh/helm/v3@$HELM3_VERSION")
go_install helm3 "$HELM3_VERSION" "helm.sh/helm/v3/cmd/helm@$HELM3_VERSION" \
  -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM3_VERSION \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor3 \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor3"

# helm-unittest's go.mod has a replace directive, so it is built inside its own source tree. It
# renders with the helm 3 library; run standalone it works the same next to helm 3 and helm 4.
minor_ut=$(client_go_minor "github.com/helm-unittest/helm-unittest@$HELM_UNITTEST_VERSION")
go_build_module helm-unittest "$HELM_UNITTEST_VERSION" \
  "github.com/helm-unittest/helm-unittest@$HELM_UNITTEST_VERSION" ./cmd/helm-unittest \
  -ldflags "-s -w -X github.com/helm-unittest/helm-unittest/internal/build.version=$HELM_UNITTEST_VERSION \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor_ut"

go_install kubeconform "$KUBECONFORM_VERSION" \
  "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION" -ldflags "-s -w"

go_install helm-docs "$HELM_DOCS_VERSION" \
  "github.com/norwoodj/helm-docs/cmd/helm-docs@$HELM_DOCS_VERSION" \
  -ldflags "-s -w -X main.version=$HELM_DOCS_VERSION"

# Kubernetes JSON schemas (strict) for kubeconform, one directory per version.
"$REPO_ROOT/ci/k8s-schemas.sh"
