#!/usr/bin/env bash
# Fetch the JavaScript the site needs so that it reads offline: MathJax 3 (math)
# and the Jupyter widgets HTML manager with RequireJS (static widget views);
# and axe-core, the accessibility checker that the browser test runs on every
# page (it is not copied into the site).
# They come from the npm registry as package tarballs (no dependencies are
# installed) and land in _vendor/, which git ignores: never commit them. The
# book copies them into the site (_ext/vendor_assets.py).
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=_vendor
MATHJAX=mathjax@3.2.2
HTML_MANAGER=@jupyter-widgets/html-manager@1.0.15
REQUIREJS=requirejs@2.3.7
AXE=axe-core@4.14.1

if ! command -v npm >/dev/null; then
    echo "npm is needed to fetch MathJax and the widget manager (apt-get install npm)" >&2
    exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$MATHJAX" "$HTML_MANAGER" "$REQUIREJS" "$AXE" >/dev/null)
# Unpacked next to _vendor/ first and swapped in folder by folder, so that a
# build running meanwhile (the folder may be shared) never sees it half empty.
mkdir -p "$DEST"
stage=$(mktemp -d "$DEST/.stage.XXXXXX")
trap 'rm -rf "$tmp" "$stage"' EXIT
mkdir -p "$stage/mathjax" "$stage/html-manager" "$stage/requirejs" "$stage/axe-core"
tar -xzf "$tmp"/mathjax-*.tgz -C "$stage/mathjax" --strip-components=1 package/es5 package/package.json
tar -xzf "$tmp"/jupyter-widgets-html-manager-*.tgz -C "$stage/html-manager" \
    --strip-components=1 package/dist package/package.json
tar -xzf "$tmp"/requirejs-*.tgz -C "$stage/requirejs" --strip-components=1 \
    package/require.js package/package.json
tar -xzf "$tmp"/axe-core-*.tgz -C "$stage/axe-core" --strip-components=1 \
    package/axe.min.js package/package.json package/LICENSE
# Only CommonHTML output is used: drop the SVG builds and the source maps.
rm -f "$stage"/mathjax/es5/*svg*.js "$stage"/html-manager/dist/*.map
rm -rf "$stage"/mathjax/es5/output/svg*
# The offline site and the test reference these files; fail here if one is missing.
for f in mathjax/es5/tex-chtml.js html-manager/dist/embed-amd.js requirejs/require.js \
         axe-core/axe.min.js; do
    test -s "$stage/$f" || { echo "missing $f in the fetched packages" >&2; exit 1; }
done
for dir in mathjax html-manager requirejs axe-core; do
    rm -rf "$DEST/$dir.old"
    if [ -e "$DEST/$dir" ]; then mv "$DEST/$dir" "$DEST/$dir.old"; fi
    mv "$stage/$dir" "$DEST/$dir"
    rm -rf "$DEST/$dir.old"
done
echo "$MATHJAX $HTML_MANAGER $REQUIREJS $AXE" > "$DEST/VERSIONS"
du -sh "$DEST/"
