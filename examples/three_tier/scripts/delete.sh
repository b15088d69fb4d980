#!/bin/bash
. "$(dirname "$0")/lib.sh"
record
rm -rf "$dir"
rmdir "$(dirname "$dir")" 2>/dev/null || true
echo "deleted $WF_NODE"
