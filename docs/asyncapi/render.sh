#!/usr/bin/env bash
# Renders the event catalog (docs/asyncapi/asyncapi.json) as one self-contained browsable page,
# docs/asyncapi/index.html, with the AsyncAPI generator's HTML template (the React component's
# standalone bundle inlined: the page needs no network). Run from anywhere after regenerating
# the document (python -m signup_contracts.asyncapi); needs node and npm. The pinned tools are
# installed under var/asyncapi-tools once; their usage analytics are switched off.
set -euo pipefail
cd "$(dirname "$0")/../.."
CLI_VERSION=6.2.0
TEMPLATE_VERSION=3.5.6
TOOLS=var/asyncapi-tools
DOCUMENT=contracts/src/signup_contracts/data/asyncapi.json
CLI="$TOOLS/node_modules/.bin/asyncapi"
TEMPLATE="$TOOLS/node_modules/@asyncapi/html-template"

mkdir -p "$TOOLS"
if ! grep -qs "\"version\": \"$TEMPLATE_VERSION\"" "$TEMPLATE/package.json" || [ ! -x "$CLI" ]; then
  PUPPETEER_SKIP_DOWNLOAD=1 npm install --prefix "$TOOLS" --no-audit --no-fund --loglevel=error \
    "@asyncapi/cli@$CLI_VERSION" "@asyncapi/html-template@$TEMPLATE_VERSION"
fi
export ASYNCAPI_METRICS_CONFIG_PATH="$PWD/$TOOLS/analytics.json"
echo '{"analyticsEnabled": "false", "infoMessageShown": "true", "userID": "-"}' \
  > "$ASYNCAPI_METRICS_CONFIG_PATH"
export SUPPRESS_NO_CONFIG_WARNING=1
OUT=$(mktemp -d "$PWD/var/asyncapi-html.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
"$CLI" generate fromTemplate "$DOCUMENT" "$TEMPLATE" --output "$OUT" --force-write \
  --param singleFile=true --no-interactive >"$OUT.log" 2>&1 || { cat "$OUT.log"; exit 1; }
rm -f "$OUT.log"
cp "$OUT/index.html" docs/asyncapi/index.html
echo "wrote docs/asyncapi/index.html"
