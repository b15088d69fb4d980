#!/bin/bash
# Lay out the static site. MESSAGE comes from a property: written as data, never evaluated.
set -euo pipefail
mkdir -p "$SITE_DIR/www"
printf '%s\n' "$MESSAGE" > "$SITE_DIR/www/index.html"
