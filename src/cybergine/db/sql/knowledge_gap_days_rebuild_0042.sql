CREATE OR REPLACE FUNCTION cybergine_knowledge_gap_days_rebuild(organisation uuid)
RETURNS bigint
LANGUAGE plpgsql AS $$
-- One organisation's knowledge_gap_days summed again from its questions, the rows
-- ``cybergine_knowledge_gap_days_keep`` keeps as questions are written: for the migration
-- that brought them and for ``cybergine analytics rebuild``. Writers of questions wait
-- while it runs (a question written meanwhile would be counted by neither). Returns the
-- number of rows written.
DECLARE
    written bigint;
BEGIN
    LOCK TABLE knowledge_gap_questions IN SHARE MODE;
    DELETE FROM knowledge_gap_days WHERE organisation_id = organisation;
    INSERT INTO knowledge_gap_days
           (id, organisation_id, created_at, updated_at, group_id, day, previous_day,
            previous_gap_day, assistant_id, channel, cause, questions, first_seen, last_seen)
    SELECT gen_random_uuid(), organisation, s.day + interval '24 hours', now(), s.group_id,
           s.day, s.previous_day, s.previous_gap_day, s.assistant_id, s.channel, s.cause,
           count(*), min(s.created_at), max(s.created_at)
      FROM (SELECT date_trunc('day', q.created_at, 'UTC') AS day,
                   date_trunc('day', q.previous_at, 'UTC') AS previous_day,
                   date_trunc('day', q.previous_gap_at, 'UTC') AS previous_gap_day,
                   q.group_id, q.assistant_id, q.channel, q.cause, q.created_at
              FROM knowledge_gap_questions q
             WHERE q.organisation_id = organisation AND q.group_id IS NOT NULL) AS s
     GROUP BY s.group_id, s.day, s.previous_day, s.previous_gap_day, s.assistant_id,
              s.channel, s.cause;
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END;
$$;
