#!/usr/bin/env bash
# The peer bench (not part of CI): setl-rs's main job against DuckDB and Polars on the same
# tables and queries. Installs the engines from PyPI into a virtual environment of its own
# (target/peers-venv), builds the job, then runs peers.py with the given options, e.g.
#   benches/peers/run.sh --scale 1 --rounds 3
#   benches/peers/run.sh --scale 10 --rounds 2   # the tables take ~13 GB, generated once
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=target/peers-venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet duckdb==2.0.1 polars==2.1.0
fi
cargo build --release -p setl-tpch
exec "$venv/bin/python" benches/peers/peers.py "$@"
