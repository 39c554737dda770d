#!/usr/bin/env bash
# Vendor ElevenLabs' official browser client (@elevenlabs/client) into the page:
#
#   scripts/vendor_elevenlabs_client.sh            # the version pinned below
#   scripts/vendor_elevenlabs_client.sh 1.26.0     # another version (then commit)
#
# It installs the package from the npm registry in a temporary directory, bundles it
# with esbuild into ONE ES module with everything it imports (livekit-client etc.), and
# writes under companion_ws/static/vendor/elevenlabs-client/:
#
#   elevenlabs-client.js        the bundle the page imports (no CDN, no eval)
#   worklets/*.js               the SDK's AudioWorklet modules, served by the hub so the
#                               SDK loads them by path (workletPaths) instead of from
#                               blob:/data: URLs, which the page's CSP does not allow
#   libsamplerate.worklet.js    the resampler the SDK otherwise fetches from a CDN when
#                               the browser cannot open a 16 kHz audio context (Firefox)
#   VERSION                     what was bundled, and with which esbuild
#   LICENSE                     @elevenlabs/client's licence
#   THIRD_PARTY_LICENSES        the licence of every other package in the bundle
#
# Only the npm registry is needed; node_modules never leaves the temporary directory.
set -euo pipefail

export VERSION="${1:-1.25.0}"
export ESBUILD_VERSION="0.28.2"
LIBSAMPLERATE_VERSION="2.1.2"  # what @elevenlabs/client's addLibsamplerateModule names

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$ROOT/companion_ws/static/vendor/elevenlabs-client"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

cd "$WORK"
cat > package.json <<JSON
{"name": "vendor-elevenlabs-client", "private": true, "type": "module"}
JSON
npm install --no-audit --no-fund --silent --save-exact \
  "@elevenlabs/client@$VERSION" "esbuild@$ESBUILD_VERSION" \
  "@alexanderolsen/libsamplerate-js@$LIBSAMPLERATE_VERSION"
# npm 11 may hold back esbuild's postinstall (which only picks its native binary):
# run it ourselves, then check the binary answers.
[ -x node_modules/.bin/esbuild ] && node_modules/.bin/esbuild --version >/dev/null 2>&1 \
  || (cd node_modules/esbuild && node install.js)

cat > entry.js <<'JS'
export * from "@elevenlabs/client";
JS
node_modules/.bin/esbuild entry.js \
  --bundle --format=esm --platform=browser --target=es2020 \
  --minify --legal-comments=none --charset=utf8 \
  --metafile=meta.json --log-level=warning \
  --outfile=bundle.js

# The bundle must not compile code at run time: the page's CSP has no 'unsafe-eval'.
if grep -Eq '(^|[^.A-Za-z0-9_$])eval\(|new Function\(' bundle.js; then
  echo "the bundle calls eval/new Function: the page's CSP would refuse it" >&2
  exit 1
fi

rm -rf "$OUT"
mkdir -p "$OUT/worklets"
{
  echo "// @elevenlabs/client $VERSION from the npm registry, bundled by"
  echo "// scripts/vendor_elevenlabs_client.sh (esbuild $ESBUILD_VERSION). Do not edit:"
  echo "// run the script again. Licences: LICENSE and THIRD_PARTY_LICENSES here."
  cat bundle.js
} > "$OUT/elevenlabs-client.js"
cp node_modules/@elevenlabs/client/worklets/*.js "$OUT/worklets/"
cp node_modules/@alexanderolsen/libsamplerate-js/dist/libsamplerate.worklet.js "$OUT/"
cp node_modules/@elevenlabs/client/LICENSE "$OUT/LICENSE"

# Every package esbuild put in the bundle, plus the resampler, with its licence text.
node - "$OUT" <<'JS'
const fs = require("fs");
const path = require("path");
const out = process.argv[2];
const meta = JSON.parse(fs.readFileSync("meta.json", "utf8"));
// esbuild's inputs name the packages it read; livekit-client's own build already
// inlines its dependencies, so take @elevenlabs/client's whole dependency tree.
const packages = new Set();
for (const input of Object.keys(meta.inputs)) {
  const m = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//g);
  if (m) packages.add(m[m.length - 1].replace(/^node_modules\//, "").replace(/\/$/, ""));
}
const seen = new Set();
(function walk(name) {
  if (seen.has(name)) return;
  seen.add(name);
  packages.add(name);
  const pkg = JSON.parse(fs.readFileSync(path.join("node_modules", name, "package.json"), "utf8"));
  for (const dep of Object.keys(pkg.dependencies || {})) walk(dep);
})("@elevenlabs/client");
packages.add("@alexanderolsen/libsamplerate-js");
const versions = [];
const texts = [];
for (const name of [...packages].sort()) {
  const dir = path.join("node_modules", name);
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
  versions.push(`${name}@${pkg.version} (${pkg.license || "see licence"})`);
  if (name === "@elevenlabs/client") continue;
  const file = fs.readdirSync(dir).find((f) => /^(licen[cs]e|copying)/i.test(f));
  const text = file ? fs.readFileSync(path.join(dir, file), "utf8").trim()
    : `No licence file in the package; its package.json says: ${pkg.license}`;
  texts.push(`${"=".repeat(78)}\n${name}@${pkg.version}\n${"=".repeat(78)}\n\n${text}\n`);
}
fs.writeFileSync(path.join(out, "THIRD_PARTY_LICENSES"), texts.join("\n"));
fs.writeFileSync(path.join(out, "VERSION"),
  `@elevenlabs/client ${process.env.VERSION}\nbundled with esbuild ${process.env.ESBUILD_VERSION}\n\n`
  + `packages in elevenlabs-client.js (the dependency tree of @elevenlabs/client)\n`
  + `and libsamplerate.worklet.js:\n`
  + versions.map((v) => `  ${v}\n`).join(""));
JS
echo "vendored @elevenlabs/client $VERSION into ${OUT#"$ROOT"/}:"
ls -l "$OUT" "$OUT/worklets"
