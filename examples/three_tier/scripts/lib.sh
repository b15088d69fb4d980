# Shared by the tier scripts (shipped with each operation as a dependency).
# WF_MACHINE_ROOT is empty on real machines; the project's loopback test machines set it (sshd
# SetEnv) so that three "machines" on one file system keep apart.
set -eu
root="${WF_MACHINE_ROOT:-}"
dir="$root$TIER_DIR"

record() {
    mkdir -p "$root/var/log/three-tier"
    printf '%s|%s|%s|%s|%s\n' "$WF_NODE" "$WF_OPERATION" "${WF_RELATIONSHIP:-}" \
        "${SSH_CONNECTION:-local}" "$(id -un)" >> "$root/var/log/three-tier/ops.log"
}
