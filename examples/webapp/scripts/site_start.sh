#!/bin/bash
# Start a Python HTTP server on loopback, wait until it answers, publish its url attribute.
set -euo pipefail
py=$(command -v python3)
nohup "$py" -m http.server "$PORT" --bind 127.0.0.1 --directory "$SITE_DIR/www" \
  > "$SITE_DIR/server.log" 2>&1 < /dev/null &
echo $! > "$SITE_DIR/server.pid"
url="http://127.0.0.1:$PORT/"
for _ in $(seq 1 100); do
  if "$py" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "$url" 2>/dev/null; then
    echo "url=$url" >> "$WF_OUTPUTS"
    exit 0
  fi
  sleep 0.1
done
echo "server did not answer on $url" >&2
exit 1
