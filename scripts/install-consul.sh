#!/usr/bin/env bash
# Installs a Consul binary into the project (.cache/consul/bin/consul) when none is usable.
# Debian 12 has no consul package: take Debian 11's (suite bullseye, Debian's own archive) with
# `apt-get download` against a private package list, and unpack it with `dpkg -x`. The system's
# apt sources are not touched. Elsewhere (no apt), fall back to HashiCorp's release archive.
# Prints the path of the binary on its last line.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/.cache/consul"
bin="$dest/bin/consul"

if [ -x "$bin" ] && "$bin" version >/dev/null 2>&1; then echo "$bin"; exit 0; fi
if [ -n "${CONSUL_BIN:-}" ] && "$CONSUL_BIN" version >/dev/null 2>&1; then
  mkdir -p "$dest/bin"; ln -sf "$CONSUL_BIN" "$bin"; echo "$bin"; exit 0
fi
mkdir -p "$dest/bin"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

if command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1; then
  arch=$(dpkg --print-architecture)
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  opt="signed-by=$keyring"; [ -f "$keyring" ] || opt="trusted=yes"
  echo "deb [$opt] http://deb.debian.org/debian bullseye main" > "$work/sources.list"
  apt_opts=(-o APT::Sandbox::User=root -o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
            -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o "APT::Architecture=$arch")
  apt-get "${apt_opts[@]}" -qq update >&2
  (cd "$work" && apt-get "${apt_opts[@]}" -qq download consul >&2 2>/dev/null || \
     (cd "$work" && apt-get "${apt_opts[@]}" download consul >&2))
  dpkg -x "$work"/consul_*.deb "$work/x"
  install -m 0755 "$work/x/usr/bin/consul" "$bin"
else
  version=${CONSUL_VERSION:-1.20.2}
  case "$(uname -m)" in x86_64) a=amd64;; aarch64|arm64) a=arm64;; *) a=386;; esac
  url="https://releases.hashicorp.com/consul/${version}/consul_${version}_linux_${a}.zip"
  curl -fsSL "$url" -o "$work/consul.zip"
  curl -fsSL "https://releases.hashicorp.com/consul/${version}/consul_${version}_SHA256SUMS" -o "$work/sums"
  (cd "$work" && grep "linux_${a}.zip" sums | sed "s/consul_${version}_linux_${a}.zip/consul.zip/" | sha256sum -c - >&2)
  python3 -c "import zipfile,sys; zipfile.ZipFile(sys.argv[1]).extract('consul', sys.argv[2])" "$work/consul.zip" "$dest/bin"
  chmod 0755 "$bin"
fi
"$bin" version >&2
echo "$bin"
