#!/usr/bin/env bash
# Builds a local stand-in for the official python:3.11-slim image from Debian packages (debootstrap + docker import).
source "$(dirname "$0")/lib.sh"

# The tag carries a hash of this script (which holds the package list), so any change here builds a
# new base and an unchanged script reuses the cached one. Prints the tag on stdout.
SUITE=bookworm
PACKAGES=(python3 python3-venv ca-certificates tzdata netbase)
BASE_REPO=task-manager-base
hash=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-12)
tag="$BASE_REPO:$SUITE-py$PYTHON_MINOR-$hash"

if docker image inspect "$tag" >/dev/null 2>&1; then
  log "base image $tag is cached"
  printf '%s\n' "$tag"
  exit 0
fi

# debian_mirror SUFFIX: the URI of the Debian archive (SUFFIX "debian" or "debian-security") that
# apt on this machine already uses, from deb822 *.sources or one-line *.list files.
debian_mirror() {
  local suffix=$1 f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    uri=$(awk -v s="/$suffix" '$1 == "URIs:" { for (i = 2; i <= NF; i++) { u = $i; sub(/\/$/, "", u);
            if (substr(u, length(u) - length(s) + 1) == s) { print u; exit } } }' "$f")
    [[ -n $uri ]] && { printf '%s\n' "$uri"; return 0; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f $f ]] || continue
    uri=$(awk -v s="/$suffix" '$1 == "deb" { u = ($2 ~ /^\[/) ? $3 : $2; sub(/\/$/, "", u);
            if (substr(u, length(u) - length(s) + 1) == s) { print u; exit } }' "$f")
    [[ -n $uri ]] && { printf '%s\n' "$uri"; return 0; }
  done
  return 1
}

mirror=$(debian_mirror debian) || die "no Debian mirror configured in /etc/apt/sources.list*"
security=$(debian_mirror debian-security || true)
apt_install debootstrap debian-archive-keyring

root=$(mktemp -d "${TMPDIR:-/tmp}/task-manager-base.XXXXXX")
trap 'rm -rf "$root" "$root".*.log' EXIT
chmod 0755 "$root" # becomes the image's /

log "debootstrap $SUITE from $mirror with: ${PACKAGES[*]}"
debootstrap --variant=minbase --components=main --include="$(IFS=,; echo "${PACKAGES[*]}")" \
  "$SUITE" "$root" "$mirror" >"$root.debootstrap.log" 2>&1 \
  || { tail -n 40 "$root.debootstrap.log" >&2; die "debootstrap failed"; }
rm -f "$root.debootstrap.log"

# Like Debian's slim images: no docs, man pages or translations (license files stay), now or on
# later installs.
cat >"$root/etc/dpkg/dpkg.cfg.d/slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CFG
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/*
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +

# Same sources as the host, so the base gets this suite's point and security updates (the official
# image is rebuilt on them too) and users of the image can apt-get from the same mirror.
{
  printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\n' "$mirror" "$SUITE" "$SUITE"
  printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
  if [[ -n $security ]]; then
    printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\n' "$security" "$SUITE"
    printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
  fi
} >"$root/etc/apt/sources.list.d/debian.sources"
: >"$root/etc/apt/sources.list"
log "applying $SUITE updates"
chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
  DEBCONF_NOWARNINGS=yes sh -c 'apt-get -o APT::Sandbox::User=root update -qq \
    && apt-get -o APT::Sandbox::User=root -o Dpkg::Use-Pty=0 upgrade -y -qq && apt-get clean' \
  >"$root.upgrade.log" 2>&1 \
  || { tail -n 40 "$root.upgrade.log" >&2; die "apt-get upgrade in the base root failed"; }
rm -f "$root.upgrade.log"

# Trim what a container never uses, as the official slim image does.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/debconf/*-old \
  "$root"/var/log/* "$root"/tmp/* "$root"/root/.cache
chroot "$root" python3 -c 'import sys, ssl, sqlite3, venv, ensurepip, zoneinfo' \
  || die "the base root's Python lacks a module the image needs"
version=$(chroot "$root" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[[ $version == "$PYTHON_MINOR" ]] || die "Debian $SUITE ships Python $version, the project pins $PYTHON_MINOR"

log "importing $tag"
tar --numeric-owner -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  --message "debootstrap $SUITE minbase + ${PACKAGES[*]}" - "$tag" >/dev/null
printf '%s\n' "$tag"
