#!/usr/bin/env bash
# Makes an OpenSSH server usable by the tests (.cache/sshd/bin/sshd) without installing it:
# tests/sshd_hosts.py starts private sshd instances on loopback addresses, and a system-wide
# openssh-server package would also start a system sshd listening on *:22, which is exactly the
# port the test machines need. So `apt-get download` the Debian package (and the runtime libs it
# needs that are not installed here: always libwrap0), unpack it with `dpkg -x` into .cache/sshd,
# and write a wrapper that points LD_LIBRARY_PATH at the unpacked libs and execs the real binary
# by its absolute path (sshd re-executes itself and refuses to run from a relative path).
# Also makes sure the ssh client (ssh, ssh-keygen) is installed. Idempotent.
# Prints the path of the wrapper on its last line.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/.cache/sshd"
wrapper="$dest/bin/sshd"

apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2 || {
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
  }
}

if ! command -v ssh >/dev/null 2>&1 || ! command -v ssh-keygen >/dev/null 2>&1; then
  apt_install openssh-client
fi

if [ -x "$wrapper" ] && "$wrapper" -V >/dev/null 2>&1; then echo "$wrapper"; exit 0; fi

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
# openssh-server plus the runtime libraries it depends on that this machine lacks (a fresh
# machine may lack more than libwrap0); `dpkg-query` says which are installed
wanted() {
  echo openssh-server libwrap0
  for dep in $(apt-cache depends --important openssh-server 2>/dev/null |
               sed -n 's/^ *Depends: \(lib[^ ]*\)$/\1/p'); do
    [ "$dep" = libwrap0 ] && continue
    dpkg-query -W -f='${Status}' "$dep" 2>/dev/null | grep -q 'install ok installed' || echo "$dep"
  done
}
# apt's download sandbox user (_apt) cannot write to a root-owned temp dir: download as root
download() { (cd "$work" && apt-get -o APT::Sandbox::User=root -qq download $(wanted) >&2); }
download || { apt-get update -qq >&2; download; }

rm -rf "$dest"
mkdir -p "$dest/bin"
for deb in "$work"/*.deb; do dpkg -x "$deb" "$dest"; done

libdirs=""
for d in "$dest"/lib/*-linux-gnu* "$dest"/usr/lib/*-linux-gnu*; do
  [ -d "$d" ] && libdirs="$libdirs\$here/${d#"$dest"/}:"
done
libdirs=${libdirs%:}  # an empty entry in LD_LIBRARY_PATH would mean the current directory
cat > "$wrapper" <<EOF
#!/bin/sh
# Runs the sshd unpacked by scripts/install-sshd.sh with its unpacked libraries (libwrap).
here=\$(cd "\$(dirname "\$0")/.." && pwd)
LD_LIBRARY_PATH="$libdirs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export LD_LIBRARY_PATH
exec "\$here/usr/sbin/sshd" "\$@"
EOF
chmod 0755 "$wrapper"

if LD_LIBRARY_PATH="${libdirs//\$here/$dest}" ldd "$dest/usr/sbin/sshd" | grep -q 'not found'; then
  echo "install-sshd: libraries still missing for sshd:" >&2
  LD_LIBRARY_PATH="${libdirs//\$here/$dest}" ldd "$dest/usr/sbin/sshd" | grep 'not found' >&2
  exit 1
fi
"$wrapper" -V >&2
echo "$wrapper"
