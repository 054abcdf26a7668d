"""The reporting benchmark's baseline: the same four questions as reporting/benches/queries.rs,
asked of chDB (ClickHouse embedded in Python) over the same Parquet file, loaded first into a
MergeTree table ordered by user and time (ClickHouse's natural layout for these queries), as
DuckDB loads it into its table.

    python chdb_queries.py <events.parquet> <first day> <last day> <runs>

Prints one JSON object: {"<query>": {"p50_ms": …, "p95_ms": …, "rows": …}, …}. The queries
use ClickHouse's own idioms (windowFunnel for the funnel: it follows the best chain of any
step-1 event, where ours starts at the user's first one, so its counts can be a little
higher).
"""
import json
import sys
import tempfile
import time

from chdb import session

path, first_day, last_day, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
work = tempfile.mkdtemp(prefix="chdb-bench-")
db = session.Session(work)
db.query(
    "CREATE TABLE events ENGINE = MergeTree ORDER BY (user_pseudo_id, event_time_msec) SETTINGS allow_nullable_key = 1 AS "
    f"SELECT * FROM file('{path}', Parquet)"
)
in_range = (
    f"event_time_msec >= toUnixTimestamp(toDateTime('{first_day} 00:00:00', 'UTC')) * 1000 "
    f"AND event_time_msec < toUnixTimestamp(toDateTime('{last_day} 00:00:00', 'UTC') + INTERVAL 1 DAY) * 1000"
)
day = "toDate(toDateTime(intDiv(event_time_msec, 1000), 'UTC'))"
queries = {
    "event trend": f"SELECT {day} AS period, event_name, count() AS value FROM events WHERE {in_range} GROUP BY period, event_name ORDER BY period, event_name",
    "funnel (4 steps, 1 day)": f"""
        SELECT level, count() AS users FROM (
            SELECT user_pseudo_id, windowFunnel(86400000)(toUInt64(event_time_msec), event_name = '_page_view', event_name = 'view_item',
                                                          event_name = 'add_to_cart', event_name = 'purchase') AS level
            FROM events WHERE {in_range} AND event_name IN ('_page_view', 'view_item', 'add_to_cart', 'purchase')
            GROUP BY user_pseudo_id)
        WHERE level > 0 GROUP BY level ORDER BY level""",
    "retention (8 weekly cohorts)": f"""
        WITH weeks AS (SELECT DISTINCT user_pseudo_id, toMonday({day}) AS period FROM events WHERE {in_range} AND event_name = '_page_view'),
             cohorts AS (SELECT user_pseudo_id, min(period) AS cohort FROM weeks GROUP BY user_pseudo_id)
        SELECT c.cohort, dateDiff('week', c.cohort, w.period) AS period_offset, count() AS returned_users
        FROM cohorts AS c INNER JOIN weeks AS w ON w.user_pseudo_id = c.user_pseudo_id
        GROUP BY c.cohort, period_offset ORDER BY c.cohort, period_offset""",
    "path (top 20 next pages)": f"""
        SELECT source, target, count() AS paths FROM (
            SELECT page_view_page_url_path AS source,
                   leadInFrame(page_view_page_url_path) OVER (PARTITION BY user_pseudo_id, session_id ORDER BY event_time_msec, event_id
                                                             ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING) AS target,
                   row_number() OVER (PARTITION BY user_pseudo_id, session_id ORDER BY event_time_msec, event_id) AS position
            FROM events WHERE {in_range} AND event_name = '_page_view' AND page_view_page_url_path IS NOT NULL)
        WHERE position = 1 AND target != '' GROUP BY source, target ORDER BY paths DESC, source, target LIMIT 20""",
}
figures = {}
for name, sql in queries.items():
    rows = len(json.loads(db.query(sql, "JSONCompact").data())["data"])  # also the warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        db.query(sql, "JSONCompact")
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    pick = lambda fraction: times[round((len(times) - 1) * fraction)]
    figures[name] = {"p50_ms": pick(0.5), "p95_ms": pick(0.95), "rows": rows}
    print(f"chdb {name}: {rows} rows, p50 {pick(0.5):.0f} ms", file=sys.stderr)
print(json.dumps(figures))
