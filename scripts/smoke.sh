#!/usr/bin/env bash
# Smoke test of an install WITHOUT the dev extras (what a user gets from `pip install .`): the
# CLI, the API and the dashboard import, and the pipeline runs end to end on a tiny synthetic
# shop. A runtime import of a dev-only package (pytest, hypothesis, httpx2...) fails here, where
# the test suite, which has every dev package installed, cannot see it.
# Usage: scripts/smoke.sh VENV_BIN   (run by `make smoke`, part of `make test`)
set -euo pipefail
bin="$(cd "$1" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
db="sqlite:///$work/shop.db"
"$bin/clv" --help > /dev/null
"$bin/python" -c "import retail_clv.api.app, retail_clv.dashboard.client, retail_clv.dashboard.views.pipeline"
"$bin/clv" generate --customers 150 --months 12 --out shop.csv > /dev/null
"$bin/clv" ingest shop.csv --db "$db" > /dev/null
"$bin/clv" train --budget quick --db "$db" --models-dir models > /dev/null
"$bin/clv" predict --db "$db" --models-dir models --out predictions.csv > /dev/null
head -1 predictions.csv | grep -q '^customer_id,predicted_spend_30d_model1,predicted_spend_30d_model2,predicted_products_30d,r2_model1,r2_model2'
rows=$(($(wc -l < predictions.csv) - 1))
if [ "$rows" -lt 100 ]; then
    echo "smoke: FAILED: predictions.csv has $rows customer rows, expected at least 100" >&2
    exit 1
fi
echo "smoke: OK (install without dev extras; generate, ingest, train, predict: $rows customers scored)"
