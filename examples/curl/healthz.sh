#!/usr/bin/env bash
# Liveness, as Fly.io checks it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
curl -sS "$BASE/healthz"
echo
