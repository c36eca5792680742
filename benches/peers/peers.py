"""The peer bench: setl-rs's main job against DuckDB and Polars running the same six queries over
the same Parquet tables, each writing its results as Parquet and CSV (issue 20).

Interleaved rounds in rotated order; for each engine and round the whole process's wall time,
CPU time (user + system) and peak RSS, from the kernel (`os.wait4`). The engines' CSV results
are compared before any time is printed. Run through `run.sh`, which installs the engines.
"""

import argparse
import csv
import json
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = {"wall": 0.8, "rss": 1.5}  # setl-rs / DuckDB, at most


def job_queries():
    """The job's queries, read from its source so that every engine runs the same text."""
    path = os.path.join(ROOT, "setl-tpch", "src", "queries.rs")
    with open(path) as f:
        text = f.read()
    pattern = re.compile(r'name: "(\w+)",\s*tables: &\[([^\]]*)\],\s*sql: "(.*?)",\n\};', re.S)
    queries = [
        {"name": name, "tables": re.findall(r'"(\w+)"', tables), "sql": sql}
        for name, tables, sql in pattern.findall(text)
    ]
    if len(queries) != 6:
        sys.exit(f"expected the job's 6 queries in {path}, found {len(queries)}")
    return queries


def measure(command, env=None):
    """Runs `command`; its wall time (s), CPU time (s) and peak RSS (bytes)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    stderr = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(command)} failed:\n{stderr}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024


def rows(path):
    """A CSV result as rows of numbers or text."""

    def value(cell):
        try:
            return float(cell)
        except ValueError:
            return cell

    with open(path, newline="") as f:
        reader = csv.reader(f)
        next(reader, None)
        return [tuple(value(cell) for cell in row) for row in reader]


def same(a, b):
    """Rows equal, numbers within what printing them to a decimal's scale rounds away."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if isinstance(x, float) and isinstance(y, float):
            if abs(x - y) > 1e-9 * max(abs(x), abs(y)) + 1e-6:
                return False
        elif x != y:
            return False
    return True


def check_agree(outs, queries):
    reference = outs["setl-rs"]
    for engine, out in outs.items():
        for query in queries:
            name = query["name"]
            expected, got = rows(os.path.join(reference, f"{name}.csv")), rows(os.path.join(out, f"{name}.csv"))
            # Rows tied on a LIMIT's sort keys may come in another order.
            in_order = len(expected) == len(got) and all(same(x, y) for x, y in zip(expected, got))
            if not in_order and not all(same(x, y) for x, y in zip(sorted(expected, key=str), sorted(got, key=str))):
                sys.exit(f"{engine}'s {name} differs from setl-rs's:\n{expected[:3]}\n{got[:3]}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", default="1")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engines", default="setl-rs,duckdb,polars")
    args = parser.parse_args()
    data = os.path.join(ROOT, "target", "tpch", f"sf{args.scale}", "data")
    work = os.path.join(ROOT, "target", "peers", f"sf{args.scale}")
    os.makedirs(work, exist_ok=True)
    queries_file = os.path.join(work, "queries.json")
    queries = job_queries()
    with open(queries_file, "w") as f:
        json.dump(queries, f)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    job = os.path.join(target, "release", "setl-tpch")
    engines = args.engines.split(",")
    commands = {
        "setl-rs": lambda out: [job, "--scale", args.scale, "--threads", str(args.threads), "--data", data, "--out", out],
        "duckdb": lambda out: [sys.executable, os.path.join(HERE, "engines.py"), "duckdb"],
        "polars": lambda out: [sys.executable, os.path.join(HERE, "engines.py"), "polars"],
    }
    outs = {engine: os.path.join(work, engine) for engine in engines}

    def command(engine):
        base = commands[engine](outs[engine])
        if engine != "setl-rs":
            base += ["--data", data, "--out", outs[engine], "--threads", str(args.threads), "--queries", queries_file]
        return base

    # A first, untimed run of each: tables generated, caches warm, results to compare.
    for engine in engines:
        measure(command(engine))
    check_agree(outs, queries)
    print(f"results agree: {', '.join(engines)} (6 queries, scale {args.scale})")
    figures = {engine: [] for engine in engines}
    for round_ in range(args.rounds):
        order = engines[round_ % len(engines):] + engines[: round_ % len(engines)]
        for engine in order:
            figures[engine].append(measure(command(engine)))
    print(f"\nscale {args.scale}, {args.threads} threads, median of {args.rounds} interleaved rounds (rotated order)")
    print(f"{'engine':<8} {'wall s':>7} {'cpu s':>7} {'peak RSS MiB':>13}")
    medians = {}
    for engine in engines:
        wall, cpu, rss = (statistics.median(values) for values in zip(*figures[engine]))
        medians[engine] = (wall, cpu, rss)
        print(f"{engine:<8} {wall:>7.2f} {cpu:>7.2f} {rss / 2**20:>13.0f}")
    if "setl-rs" in medians and "duckdb" in medians:
        (wall, cpu, rss), (d_wall, d_cpu, d_rss) = medians["setl-rs"], medians["duckdb"]
        print(f"\nsetl-rs / DuckDB: wall {wall / d_wall:.2f}x (target <= {TARGETS['wall']}x), "
              f"CPU {cpu / d_cpu:.2f}x, peak RSS {rss / d_rss:.2f}x (target <= {TARGETS['rss']}x)")


if __name__ == "__main__":
    main()
