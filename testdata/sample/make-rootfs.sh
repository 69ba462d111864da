#!/usr/bin/env bash
# Builds the sample root filesystem tarball from Debian's busybox-static: busybox and its applet
# symlinks, /etc/passwd and /etc/group, a sticky /tmp, and a small app script.
# Usage: make-rootfs.sh OUT.tar
set -euo pipefail
out=${1:?usage: make-rootfs.sh OUT.tar}
bb=$(command -v busybox || true)
[ -n "$bb" ] || { echo "busybox-static is not installed (apt-get install busybox-static)" >&2; exit 1; }
r=$(mktemp -d)
trap 'rm -rf "$r"' EXIT
mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$r/root" "$r/app"
cp "$bb" "$r/bin/busybox"
for a in $("$bb" --list); do [ -e "$r/bin/$a" ] || ln -s busybox "$r/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$r/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$r/etc/group"
chmod 1777 "$r/tmp"
cat > "$r/app/hello.sh" <<'SH'
#!/bin/sh
echo "hello from a hoist image: $(uname -s), busybox $(busybox | head -1 | cut -d' ' -f2)"
SH
chmod 755 "$r/app/hello.sh"
tar --numeric-owner -C "$r" -cf "$out" .
