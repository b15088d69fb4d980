#!/bin/bash
. "$(dirname "$0")/lib.sh"
record
rm -f "$dir/running"
echo "stopped $WF_NODE"
