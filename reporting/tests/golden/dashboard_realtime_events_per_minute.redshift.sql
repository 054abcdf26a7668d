WITH base AS (SELECT TO_CHAR((TIMESTAMP 'epoch' + e.event_time_msec / 1000 * INTERVAL '1 second'), 'HH24:MI') AS period, e.event_time_msec FROM "shop-web".event_v2 AS e WHERE e.event_time_msec >= :p1 AND e.event_time_msec < :p2) SELECT period, 'events' AS series, COUNT(*) AS value FROM base GROUP BY period ORDER BY MIN(event_time_msec)
-- parameters: [1794296400000,1794298200001]
