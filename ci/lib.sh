# Shared helpers for ci/ scripts: paths, logging and the version-keyed tool cache. Source, don't run.
# shellcheck shell=bash
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=versions.env
source "$REPO_ROOT/ci/versions.env"

# Built tools live outside the work tree, keyed by name and version, so a fresh clone on the same
# machine reuses them; .tools/bin in the checkout only holds links into this cache.
TOOLS_CACHE="${TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/task-manager/tools}"
TOOLS_BIN="$REPO_ROOT/.tools/bin"
mkdir -p "$TOOLS_CACHE" "$TOOLS_BIN"
export PATH="$TOOLS_BIN:$REPO_ROOT/.venv/bin:$PATH"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# link_tool NAME PATH: expose a cached binary as .tools/bin/NAME.
link_tool() { ln -sfn "$2" "$TOOLS_BIN/$1"; }

# cached_tool NAME VERSION: prints the cache directory for NAME at VERSION (created on demand).
cached_tool() { local d="$TOOLS_CACHE/$1-$2"; mkdir -p "$d"; printf '%s\n' "$d"; }

# go_install NAME VERSION PACKAGE@VERSION [go build flags...]: builds once per version into the
# cache with `go install`, then links it into .tools/bin. A second run rebuilds nothing.
go_install() {
  local name=$1 version=$2 pkg=$3; shift 3
  local dir; dir=$(cached_tool "$name" "$version")
  if [[ ! -x "$dir/$name" ]]; then
    log "building $name $version"
    GOBIN="$dir" GOFLAGS="${GOFLAGS:-} -trimpath" go install "$@" "$pkg"
    local built; built=$(basename "${pkg%@*}")
    [[ "$built" == "$name" || ! -x "$dir/$built" ]] || mv "$dir/$built" "$dir/$name"
  fi
  link_tool "$name" "$dir/$name"
}

# apt_install PKG...: installs Debian packages that are missing; idempotent.
apt_install() {
  local missing=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
  ((${#missing[@]} == 0)) && return 0
  log "apt-get install ${missing[*]}"
  # Root here; on a GitHub runner the runner user has password-less sudo.
  local sudo=(); ((EUID == 0)) || sudo=(sudo)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

# go_build_module NAME VERSION MODULE@VERSION PKGDIR [go build flags...]: for modules whose go.mod has
# replace directives (which `go install pkg@version` refuses): downloads the module through the
# proxy, copies its source tree out of the read-only module cache and builds PKGDIR (relative to
# the module root, e.g. ./cmd/tool) there, once per version, into the cache; links .tools/bin/NAME.
go_build_module() {
  local name=$1 version=$2 mod=$3 pkgdir=$4; shift 4
  local dir; dir=$(cached_tool "$name" "$version")
  if [[ ! -x "$dir/$name" ]]; then
    log "building $name $version from the module source tree"
    local src tmp
    src=$(go mod download -json "$mod" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [[ -d "$src" ]] || die "go mod download $mod gave no source directory"
    tmp=$(mktemp -d)
    cp -r "$src/." "$tmp/"
    chmod -R u+w "$tmp"
    (cd "$tmp" && GOFLAGS="${GOFLAGS:-} -trimpath" go build "$@" -o "$dir/$name" "$pkgdir")
    rm -rf "$tmp"
  fi
  link_tool "$name" "$dir/$name"
}
