#!/bin/bash
. "$(dirname "$0")/lib.sh"
record
if [ -f "$dir/links" ]; then
    grep -v -F "$WF_RELATIONSHIP" "$dir/links" > "$dir/links.new" || true
    mv "$dir/links.new" "$dir/links"
fi
