#!/bin/bash
set -euo pipefail
rm -rf "$SITE_DIR"
rmdir "$(dirname "$SITE_DIR")" 2>/dev/null || true
