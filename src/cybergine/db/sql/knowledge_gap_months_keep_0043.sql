CREATE OR REPLACE FUNCTION cybergine_knowledge_gap_months_keep()
RETURNS trigger
LANGUAGE plpgsql AS $$
-- Keeps knowledge_gap_months the sums of knowledge_gap_days per UTC month, whoever writes
-- the daily rows: the trigger on the questions (a row at a time) and the rebuild of the
-- daily rows (all of an organisation's in one statement). A statement trigger: it reads
-- the statement's rows (``removed``: the rows as they were, ``added``: as they are now)
-- and moves each month row once per statement. A daily row's ``previous_day`` and
-- ``previous_gap_day`` inside its own month count as the month's first day (see
-- analytics.gap_models.GapMonth); none stays none.
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE knowledge_gap_months m
           SET questions = m.questions - s.questions, updated_at = now()
          FROM (SELECT r.organisation_id, r.group_id,
                       date_trunc('month', r.day, 'UTC') AS month,
                       CASE WHEN r.previous_day IS NOT NULL THEN
                            greatest(r.previous_day, date_trunc('month', r.day, 'UTC')) END
                           AS previous_day,
                       CASE WHEN r.previous_gap_day IS NOT NULL THEN
                            greatest(r.previous_gap_day, date_trunc('month', r.day, 'UTC')) END
                           AS previous_gap_day,
                       r.assistant_id, r.channel, r.cause, sum(r.questions) AS questions
                  FROM removed r
                 GROUP BY 1, 2, 3, 4, 5, 6, 7, 8) AS s
         WHERE m.organisation_id = s.organisation_id AND m.group_id = s.group_id
           AND m.month = s.month
           AND m.previous_day IS NOT DISTINCT FROM s.previous_day
           AND m.previous_gap_day IS NOT DISTINCT FROM s.previous_gap_day
           AND m.assistant_id IS NOT DISTINCT FROM s.assistant_id
           AND m.channel = s.channel AND m.cause = s.cause;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO knowledge_gap_months AS m
               (id, organisation_id, created_at, updated_at, group_id, month, previous_day,
                previous_gap_day, assistant_id, channel, cause, questions, first_seen,
                last_seen)
        SELECT gen_random_uuid(), s.organisation_id, s.month + interval '1 month', now(),
               s.group_id, s.month, s.previous_day, s.previous_gap_day, s.assistant_id,
               s.channel, s.cause, s.questions, s.first_seen, s.last_seen
          FROM (SELECT a.organisation_id, a.group_id,
                       date_trunc('month', a.day, 'UTC') AS month,
                       CASE WHEN a.previous_day IS NOT NULL THEN
                            greatest(a.previous_day, date_trunc('month', a.day, 'UTC')) END
                           AS previous_day,
                       CASE WHEN a.previous_gap_day IS NOT NULL THEN
                            greatest(a.previous_gap_day, date_trunc('month', a.day, 'UTC')) END
                           AS previous_gap_day,
                       a.assistant_id, a.channel, a.cause, sum(a.questions) AS questions,
                       min(a.first_seen) AS first_seen, max(a.last_seen) AS last_seen
                  FROM added a
                 GROUP BY 1, 2, 3, 4, 5, 6, 7, 8) AS s
        ON CONFLICT (organisation_id, group_id, month, previous_day, previous_gap_day,
                     assistant_id, channel, cause)
        DO UPDATE SET questions = m.questions + excluded.questions,
                      first_seen = least(m.first_seen, excluded.first_seen),
                      last_seen = greatest(m.last_seen, excluded.last_seen),
                      updated_at = now();
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        -- Rows that count nothing go; the others' first and last asked are read again
        -- from their month's daily rows (a removed row may have held either).
        DELETE FROM knowledge_gap_months m
         WHERE m.questions <= 0
           AND (m.organisation_id, m.group_id, m.month) IN
               (SELECT DISTINCT r.organisation_id, r.group_id,
                       date_trunc('month', r.day, 'UTC') FROM removed r);
        UPDATE knowledge_gap_months m
           SET first_seen = s.first_seen, last_seen = s.last_seen
          FROM (SELECT m2.id, min(d.first_seen) AS first_seen, max(d.last_seen) AS last_seen
                  FROM (SELECT DISTINCT r.organisation_id, r.group_id,
                               date_trunc('month', r.day, 'UTC') AS month
                          FROM removed r) AS k
                  JOIN knowledge_gap_months m2
                    ON m2.organisation_id = k.organisation_id
                   AND m2.group_id = k.group_id AND m2.month = k.month
                  JOIN knowledge_gap_days d
                    ON d.organisation_id = k.organisation_id AND d.group_id = k.group_id
                   AND d.day >= k.month AND d.day < k.month + interval '1 month'
                   AND d.assistant_id IS NOT DISTINCT FROM m2.assistant_id
                   AND d.channel = m2.channel AND d.cause = m2.cause
                   AND CASE WHEN d.previous_day IS NOT NULL THEN
                            greatest(d.previous_day, k.month) END
                       IS NOT DISTINCT FROM m2.previous_day
                   AND CASE WHEN d.previous_gap_day IS NOT NULL THEN
                            greatest(d.previous_gap_day, k.month) END
                       IS NOT DISTINCT FROM m2.previous_gap_day
                 GROUP BY m2.id) AS s
         WHERE m.id = s.id
           AND (m.first_seen IS DISTINCT FROM s.first_seen
                OR m.last_seen IS DISTINCT FROM s.last_seen);
    END IF;
    RETURN NULL;
END;
$$;
