#!/usr/bin/env bash
# Every check CI runs, in order: types, module boundaries, unit tests (no root), then the e2e
# suite (real containers, as root) against freshly built bundles.
set -euo pipefail
cd "$(dirname -- "${BASH_SOURCE[0]}")/.."

npm run --silent typecheck
npm run --silent lint
npm run --silent build
npm run --silent test:unit
if [ "$(id -u)" -eq 0 ]; then
  npm run --silent test:e2e
else
  echo "test-all: e2e tests start real containers and need root: sudo npm test" >&2
  exit 1
fi
