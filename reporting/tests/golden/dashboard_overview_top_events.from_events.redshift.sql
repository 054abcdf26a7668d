WITH base AS (SELECT e.event_name, e.user_pseudo_id, e.session_id, COALESCE(CAST(e.event_name AS VARCHAR(65535)), '(not set)') AS label FROM "shop-web".event_v2 AS e WHERE e.event_time_msec >= :p1 AND e.event_time_msec < :p2) SELECT label, COUNT(*) AS value FROM base GROUP BY label ORDER BY 2 DESC, 1 LIMIT 10
-- parameters: [1793577600000,1794787200000]
