#!/bin/bash
. "$(dirname "$0")/lib.sh"
record
mkdir -p "$dir"
printf '%s' "$BANNER" > "$dir/banner"
host=${SSH_CONNECTION:-local}
host=$(printf '%s' "$host" | cut -d' ' -f3)
echo "created $WF_NODE in $dir"
printf 'home=%s\nurl=tcp://%s:%s\n' "$TIER_DIR" "$host" "$PORT" > "$WF_OUTPUTS"
