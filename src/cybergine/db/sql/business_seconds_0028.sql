-- How many seconds of [started, ended) fall within business hours
-- ({"timezone": "Europe/Paris", "days": {"mon": [["09:00", "18:00"]], ...}}, as
-- ``assistants.business_hours`` keeps them); NULL when there are none or a bound is
-- missing. Each local day (a timestamp without zone: a wall clock) from the one before
-- ``started`` to the day of ``ended`` contributes the overlap of its ranges with the
-- interval.
CREATE OR REPLACE FUNCTION cybergine_business_seconds(started timestamp with time zone, ended timestamp with time zone, hours jsonb)
RETURNS double precision
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN hours IS NULL OR started IS NULL OR ended IS NULL THEN NULL
        WHEN ended <= started THEN 0
        ELSE coalesce((
            SELECT sum(extract(epoch FROM least(ended, window_end) - greatest(started, window_start)))
              FROM generate_series(
                       CAST((started AT TIME ZONE (hours->>'timezone'))::date - 1 AS timestamp),
                       CAST((ended AT TIME ZONE (hours->>'timezone'))::date AS timestamp),
                       interval '1 day'
                   ) AS local_day(day)
             CROSS JOIN LATERAL jsonb_array_elements(hours->'days'->to_char(local_day.day, 'dy')) AS span(value)
             CROSS JOIN LATERAL (
                   SELECT (local_day.day + (span.value->>0)::interval) AT TIME ZONE (hours->>'timezone') AS window_start,
                          (local_day.day + (span.value->>1)::interval) AT TIME ZONE (hours->>'timezone') AS window_end
             ) AS business
             WHERE window_end > started AND window_start < ended
        ), 0)::double precision
    END
$$;
