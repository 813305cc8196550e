-- Per look (one per running experiment) and lowest variant seen: subjects with one
-- variant, subjects with several (min <> max), and the newest flag signal among them. The
-- newest signal over all of a look's rows is its data end: the rows up to the cap are the
-- rows up to the data end, so one pass over flag_assignments serves every experiment's
-- data end and health. Reads the staged relation guardrail_looks(look, flag,
-- window_start, window_end), window_end being the cap.
WITH subjects AS (
    SELECT l.look, f.distinct_id, min(f.variant) AS lo, max(f.variant) AS hi,
           max(f.ts) AS newest
    FROM guardrail_looks l
    JOIN flag_assignments f
      ON f.flag_key = l.flag AND NOT f.is_bot AND NOT f.is_dnt
     AND f.ts >= l.window_start AND f.ts <= l.window_end
    GROUP BY l.look, f.distinct_id
)
SELECT look, lo, count(*) FILTER (WHERE lo = hi), count(*) FILTER (WHERE lo <> hi),
       max(newest)
FROM subjects
GROUP BY look, lo
