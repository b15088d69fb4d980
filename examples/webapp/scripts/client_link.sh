#!/bin/bash
# pre_configure_source of the ConnectsTo: SITE_URL is the target's `url` attribute.
set -euo pipefail
mkdir -p "$CLIENT_DIR"
printf 'site_url=%s\n' "$SITE_URL" > "$CLIENT_DIR/client.conf"
