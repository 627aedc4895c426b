#!/usr/bin/env bash
# Prometheus metrics (with METRICS_TOKEN when the instance requires one).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
auth=()
if [ -n "${METRICS_TOKEN:-}" ]; then auth=(-H "Authorization: Bearer $METRICS_TOKEN"); fi
curl -sS "${auth[@]}" "$BASE/metrics" | grep '^flexbridge_'
