WITH base AS (SELECT e.event_name, e.user_pseudo_id, e.session_id FROM "shop-web".event_v2 AS e WHERE e.event_time_msec >= :p1 AND e.event_time_msec < :p2) SELECT COALESCE(COUNT(DISTINCT user_pseudo_id), 0) AS active_users, COALESCE(COUNT(*), 0) AS events FROM base
-- parameters: [1794296400000,1794298200001]
