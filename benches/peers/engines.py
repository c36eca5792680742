"""Runs the main job's six TPC-H queries with DuckDB or Polars, as setl-rs's job does: over the
job's own Parquet tables, each result written as Parquet and CSV. One engine per process, so
that its CPU time and peak RSS are its own.

    python engines.py duckdb|polars --data DIR --out DIR --threads N --queries FILE
"""

import argparse
import json
import os
import sys


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("engine", choices=["duckdb", "polars"])
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--queries", required=True, help="JSON list of {name, tables, sql}")
    args = parser.parse_args()
    with open(args.queries) as f:
        queries = json.load(f)
    os.makedirs(args.out, exist_ok=True)
    tables = sorted({table for query in queries for table in query["tables"]})
    if args.engine == "duckdb":
        run_duckdb(args, queries, tables)
    else:
        run_polars(args, queries, tables)


def run_duckdb(args, queries, tables):
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {args.threads}")
    for table in tables:
        path = os.path.join(args.data, f"{table}.parquet")
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{path}')")
    for query in queries:
        out = os.path.join(args.out, query["name"])
        # One run of the query, written twice, as the job writes each result as Parquet and CSV.
        con.execute(f"CREATE TEMP TABLE result AS {query['sql']}")
        con.execute(f"COPY result TO '{out}.parquet' (FORMAT parquet)")
        con.execute(f"COPY result TO '{out}.csv' (FORMAT csv, HEADER)")
        con.execute("DROP TABLE result")


def run_polars(args, queries, tables):
    os.environ["POLARS_MAX_THREADS"] = str(args.threads)
    import polars as pl

    context = pl.SQLContext()
    for table in tables:
        context.register(table, pl.scan_parquet(os.path.join(args.data, f"{table}.parquet")))
    for query in queries:
        out = os.path.join(args.out, query["name"])
        result = context.execute(query["sql"]).collect()
        result.write_parquet(f"{out}.parquet")
        result.write_csv(f"{out}.csv")


if __name__ == "__main__":
    sys.exit(main())
