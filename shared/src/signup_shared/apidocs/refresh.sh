#!/usr/bin/env bash
# Copies the Swagger UI and ReDoc browser bundles from npm into this folder (see README.md).
set -euo pipefail
cd "$(dirname "$0")/../../../.."
SWAGGER_UI=5.35.0
REDOC=2.5.4
HERE=shared/src/signup_shared/apidocs
TOOLS=var/apidocs-npm
mkdir -p "$TOOLS"
npm install --prefix "$TOOLS" --no-audit --no-fund --loglevel=error --ignore-scripts \
  "swagger-ui-dist@$SWAGGER_UI" "redoc@$REDOC"
N="$TOOLS/node_modules"
cp "$N"/swagger-ui-dist/{swagger-ui-bundle.js,swagger-ui.css,favicon-32x32.png} "$HERE/"
cp "$N/swagger-ui-dist/swagger-ui-bundle.js.LICENSE.txt" "$HERE/"
cp "$N/swagger-ui-dist/LICENSE" "$HERE/LICENSE.swagger-ui"
cp "$N/swagger-ui-dist/NOTICE" "$HERE/NOTICE.swagger-ui"
cp "$N"/redoc/bundles/{redoc.standalone.js,redoc.standalone.js.LICENSE.txt} "$HERE/"
cp "$N/redoc/LICENSE" "$HERE/LICENSE.redoc"
echo "copied swagger-ui-dist $SWAGGER_UI and redoc $REDOC into $HERE"
