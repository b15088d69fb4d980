#!/bin/bash
set -euo pipefail
rm -rf "$CLIENT_DIR"
rmdir "$(dirname "$CLIENT_DIR")" 2>/dev/null || true
