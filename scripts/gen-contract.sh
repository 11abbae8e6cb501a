#!/usr/bin/env bash
# Regenerates the published contract from the code and commits nothing:
#   docs/schemas/*.schema.json   JSON Schemas of the wire types (crates/gavel-protocol)
#   docs/openapi.json            the OpenAPI 3.1 document (crates/gavel-server/src/http/openapi.rs)
#   clients/typescript/src/generated/protocol.ts   the TypeScript client's types
# CI fails when any of them differs from what the code gives (the same tests, without
# GAVEL_WRITE_SCHEMAS, and `npm run check-gen`).
set -euo pipefail
cd "$(dirname "$0")/.."
GAVEL_WRITE_SCHEMAS=1 cargo test -q -p gavel-protocol --test schemas -- the_published_schemas_are_the_generated_ones
GAVEL_WRITE_SCHEMAS=1 cargo test -q -p gavel-server --test api -- contract::the_served_openapi_document_is_the_published_one
(cd clients/typescript && node scripts/gen-types.mjs)
git status --short docs/schemas docs/openapi.json clients/typescript/src/generated
