#!/usr/bin/env bash
# Runs the README's commands as a user would from a fresh checkout, so that they stay true.
#
# The README marks the shell blocks it runs with an HTML comment on the line before the fence:
#   <!-- readme-check: run ... -->      the block runs as written;
#   <!-- readme-check: syntax ... -->   the block runs with `ansible-playbook --syntax-check` in
#                                       place of ansible-playbook (its hosts are examples), which
#                                       still resolves the roles, the modules and the action group.
# Where: a copy of the files git knows (tracked, plus untracked ones not ignored) in a temporary
# directory, so nothing from a previous run (.cache/, an installed collection) helps; the
# collection is installed where ANSIBLE_COLLECTIONS_PATH points (a temporary directory, the first
# path is where `ansible-galaxy collection install` puts it) and XDG_CACHE_HOME is temporary too.
# Afterwards: the embedded Space the playbooks used by default is under XDG_CACHE_HOME, and no
# Space file was written in the checkout or in the installed collection.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -x "$root/.venv/bin/ansible-playbook" ]; then export PATH="$root/.venv/bin:$PATH"; fi

work=$(mktemp -d "${TMPDIR:-/tmp}/wf-readme.XXXXXX")
trap 'rm -rf "$work"' EXIT
checkout="$work/checkout"
mkdir -p "$checkout" "$work/collections" "$work/cache"
(cd "$root" && git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done \
  | tar --null -T - -cf -) | tar -C "$checkout" -xf -

# The environment of a user who has none of ours.
for v in $(env | sed -n 's/^\(ANSIBLE_[A-Z_]*\|WF_[A-Z_]*\|CONSUL_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
export ANSIBLE_COLLECTIONS_PATH="$work/collections" ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=0
export XDG_CACHE_HOME="$work/cache" ANSIBLE_NOCOLOR=1 ANSIBLE_LOCALHOST_WARNING=0
export ANSIBLE_INVENTORY_UNPARSED_WARNING=0 ANSIBLE_RETRY_FILES_ENABLED=0

python3 - "$checkout/README.md" "$work/blocks" <<'EOF'
import os, re, sys
text = open(sys.argv[1], encoding="utf-8").read()
out = sys.argv[2]
os.makedirs(out)
blocks = re.findall(r"<!-- readme-check: (run|syntax)\b[^>]*-->\n```sh\n(.*?)```", text, re.S)
if not blocks:
    sys.exit("readme-check: no marked block in README.md")
for i, (mode, body) in enumerate(blocks):
    with open(os.path.join(out, "%02d-%s.sh" % (i, mode)), "w", encoding="utf-8") as f:
        f.write(body)
EOF

log="$work/out.log"
for block in "$work"/blocks/*.sh; do
  mode=${block##*-}; mode=${mode%.sh}
  echo "readme-check: block $(basename "$block") ($mode)"
  sed 's/^/  | /' "$block"
  prelude='set -euo pipefail'
  if [ "$mode" = syntax ]; then
    prelude="$prelude"$'\n''ansible-playbook() { command ansible-playbook --syntax-check "$@"; }'
  fi
  if ! (cd "$checkout" && bash -c "$prelude"$'\n'"$(cat "$block")") >>"$log" 2>&1; then
    tail -40 "$log"
    echo "readme-check: FAILED in block $(basename "$block")" >&2
    exit 1
  fi
done

fail() { tail -60 "$log"; echo "readme-check: FAILED: $*" >&2; exit 1; }
grep -q "19 node instances: 19 started" "$log" || fail "no install with 19 started"
grep -q "install seed_example/demo: already succeeded" "$log" || fail "the second run_install ran again"
grep -q "19 node instances: 19 deleted" "$log" || fail "no uninstall with 19 deleted"
[ -f "$XDG_CACHE_HOME/ditrit.workflows/space.db" ] || fail "the default Space is not \$XDG_CACHE_HOME/ditrit.workflows/space.db"
stray=$(find "$checkout" "$ANSIBLE_COLLECTIONS_PATH" -name '*.db' -o -name '*.db-wal' | head -5)
[ -z "$stray" ] || fail "Space files inside the checkout or the collection: $stray"
echo "readme-check: $(ls "$work"/blocks | wc -l) README blocks ran; default Space under XDG_CACHE_HOME, none in the collection"
