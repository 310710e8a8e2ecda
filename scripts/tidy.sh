#!/usr/bin/env bash
# Tidies every Go module of the repository. The test-only modules replace
# the main module with ../.., so a dependency added to the main module must be
# reflected in their go.mod and go.sum too: run this after changing go.mod.
set -euo pipefail
cd "$(dirname "$0")/.."
for mod in $(find . -name go.mod -not -path './.git/*' | sort); do
  (cd "$(dirname "$mod")" && go mod tidy)
done
