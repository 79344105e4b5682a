#!/usr/bin/env bash
# Fetch the JavaScript the site needs so that it reads offline: MathJax 3 (math)
# and the Jupyter widgets HTML manager with RequireJS (static widget views).
# They come from the npm registry as package tarballs (no dependencies are
# installed) and land in _vendor/, which git ignores: never commit them. The
# book copies them into the site (_ext/vendor_assets.py).
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=_vendor
MATHJAX=mathjax@3.2.2
HTML_MANAGER=@jupyter-widgets/html-manager@1.0.15
REQUIREJS=requirejs@2.3.7

if ! command -v npm >/dev/null; then
    echo "npm is needed to fetch MathJax and the widget manager (apt-get install npm)" >&2
    exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$MATHJAX" "$HTML_MANAGER" "$REQUIREJS" >/dev/null)
rm -rf "$DEST"
mkdir -p "$DEST/mathjax" "$DEST/html-manager" "$DEST/requirejs"
tar -xzf "$tmp"/mathjax-*.tgz -C "$DEST/mathjax" --strip-components=1 package/es5 package/package.json
tar -xzf "$tmp"/jupyter-widgets-html-manager-*.tgz -C "$DEST/html-manager" \
    --strip-components=1 package/dist package/package.json
tar -xzf "$tmp"/requirejs-*.tgz -C "$DEST/requirejs" --strip-components=1 \
    package/require.js package/package.json
# Only CommonHTML output is used: drop the SVG builds and the source maps.
rm -f "$DEST"/mathjax/es5/*svg*.js "$DEST"/html-manager/dist/*.map
rm -rf "$DEST"/mathjax/es5/output/svg*
# The offline site references these three files; fail here if one is missing.
for f in mathjax/es5/tex-chtml.js html-manager/dist/embed-amd.js requirejs/require.js; do
    test -s "$DEST/$f" || { echo "missing $DEST/$f" >&2; exit 1; }
done
echo "$MATHJAX $HTML_MANAGER $REQUIREJS" > "$DEST/VERSIONS"
du -sh "$DEST"
