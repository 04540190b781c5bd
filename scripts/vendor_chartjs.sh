#!/usr/bin/env bash
# Copies Chart.js's UMD build and licence from the npm registry into api/static/vendor/chartjs/.
# The dashboard needs no build step and no network at run time: run this only to change the version.
set -euo pipefail
VERSION="${1:-4.6.1}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$ROOT/api/static/vendor/chartjs"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

(cd "$WORK" && npm pack --silent "chart.js@$VERSION" >/dev/null && tar -xzf "chart.js-$VERSION.tgz")
mkdir -p "$DEST"
cp "$WORK/package/dist/chart.umd.min.js" "$DEST/chart.umd.min.js"
cp "$WORK/package/LICENSE.md" "$DEST/LICENSE.md"
INTEGRITY="$(cd "$WORK" && npm view "chart.js@$VERSION" dist.integrity)"
cat > "$DEST/README.md" <<README
Chart.js $VERSION (MIT, see LICENSE.md): \`dist/chart.umd.min.js\` from the npm package
\`chart.js@$VERSION\` ($INTEGRITY), copied by \`scripts/vendor_chartjs.sh $VERSION\`.
README
echo "vendored chart.js@$VERSION into ${DEST#"$ROOT"/}"
