#!/usr/bin/env bash
# Installs what hoist's tests and demo need from Debian's packages, only when missing:
# the peer tools the tests cross-check against, busybox-static for sample root filesystems, and
# apache2-utils (htpasswd) and curl for the registry tests, uidmap and setpriv for the rootless
# test.
set -euo pipefail
need=()
for t in docker-registry:docker-registry dockerd:docker.io skopeo:skopeo umoci:umoci podman:podman \
         buildah:buildah runc:runc busybox:busybox-static tar:tar htpasswd:apache2-utils curl:curl \
         newuidmap:uidmap setpriv:util-linux; do
  command -v "${t%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${t%%:*}" ] || need+=("${t#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing packages: ${need[*]} (run as root, or install them with apt-get)" >&2
    exit 1
  fi
  echo "installing: ${need[*]}" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
