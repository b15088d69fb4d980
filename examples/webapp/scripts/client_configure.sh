#!/bin/bash
# Use the configuration written by the relationship: fetch the site once.
set -euo pipefail
url=$(sed -n 's/^site_url=//p' "$CLIENT_DIR/client.conf")
python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' \
  "$url" > "$CLIENT_DIR/fetched.html"
