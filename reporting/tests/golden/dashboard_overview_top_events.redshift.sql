WITH base AS (SELECT e.events, COALESCE(CAST(e.event_name AS VARCHAR(65535)), '(not set)') AS label FROM "shop-web".report_event_activity AS e WHERE e.event_time_msec >= :p1 AND e.event_time_msec < :p2) SELECT label, CAST(SUM(events) AS BIGINT) AS value FROM base GROUP BY label ORDER BY 2 DESC, 1 LIMIT 10
-- parameters: [1793577600000,1794787200000]
