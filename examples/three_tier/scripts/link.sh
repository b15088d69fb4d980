#!/bin/bash
# A relationship operation: remembers the peer in this tier's links file.
. "$(dirname "$0")/lib.sh"
record
mkdir -p "$dir"
printf '%s %s %s\n' "$WF_OPERATION" "$WF_RELATIONSHIP" "${PEER_URL:-}" >> "$dir/links"
