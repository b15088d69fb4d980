#!/bin/bash
set -euo pipefail
if [ -f "$SITE_DIR/server.pid" ]; then
  pid=$(cat "$SITE_DIR/server.pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$SITE_DIR/server.pid"
fi
