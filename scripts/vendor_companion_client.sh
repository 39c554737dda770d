#!/usr/bin/env bash
# Vendor our own client package (packages/client, @companion-ws/client) into the page:
#
#   scripts/vendor_companion_client.sh           # rebuild, then commit the result
#   scripts/vendor_companion_client.sh --check   # exit 1 when the vendored copy is stale
#
# It compiles packages/client with its pinned TypeScript (npm ci there when needed) and
# copies the ES modules (dist/*.js, no .d.ts) to companion_ws/static/vendor/companion-client/,
# which the page imports as /static/vendor/companion-client/index.js (no CDN, no bundler:
# the modules import each other by relative path). tests/unit/test_vendored_client.py
# fails when the vendored copy differs from a fresh build of the package's source.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PKG="$ROOT/packages/client"
OUT="$ROOT/companion_ws/static/vendor/companion-client"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

if [ ! -x "$PKG/node_modules/.bin/tsc" ]; then
  (cd "$PKG" && npm ci --no-audit --no-fund --silent)
fi
"$PKG/node_modules/.bin/tsc" -p "$PKG/tsconfig.json" --outDir "$WORK/dist" --declaration false

if [ "${1:-}" = "--check" ]; then
  if ! diff -r "$WORK/dist" "$OUT" >/dev/null; then
    echo "$OUT is stale: run scripts/vendor_companion_client.sh" >&2
    diff -r "$WORK/dist" "$OUT" | head -20 >&2 || true
    exit 1
  fi
  exit 0
fi
rm -rf "$OUT"
mkdir -p "$OUT"
cp "$WORK"/dist/*.js "$OUT/"
echo "vendored @companion-ws/client $(node -p "require('$PKG/package.json').version") into $OUT"
