#!/bin/bash
. "$(dirname "$0")/lib.sh"
record
touch "$dir/running"
echo "started $WF_NODE"
