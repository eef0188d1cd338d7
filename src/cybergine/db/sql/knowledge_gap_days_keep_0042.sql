CREATE OR REPLACE FUNCTION cybergine_knowledge_gap_days_keep()
RETURNS trigger
LANGUAGE plpgsql AS $$
-- Keeps knowledge_gap_days the sums of knowledge_gap_questions as each question row is
-- written, regrouped or deleted, whoever does it: the collection's inserts, regroupings
-- and ``previous_at`` updates, and the deletions that come with a conversation (erasure,
-- the purges) or with age. A row of knowledge_gap_days: the questions of one
-- organisation and group asked on one UTC day (``day``) whose conversation last asked in
-- the group before on ``previous_day`` (the UTC day of the question's ``previous_at``;
-- none: never) and, for a knowledge gap's question, last asked there a question of a
-- gap's cause on ``previous_gap_day`` (of its ``previous_gap_at``), per assistant,
-- channel and cause: how many, and the first and last asked
-- (analytics.question_report reads them). A question with no group counts nowhere.
-- A row's ``created_at`` is the end of its day: the age purge (usage logs) takes it
-- once every question it counts is past that age, after the trigger took them out.
--
-- ``cybergine_knowledge_gap_days_rebuild`` sums the same rows from scratch; a test feeds
-- both the same questions.
DECLARE
    kept knowledge_gap_days%ROWTYPE;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.group_id IS NOT NULL THEN
        UPDATE knowledge_gap_days d
           SET questions = d.questions - 1, updated_at = now()
         WHERE d.organisation_id = OLD.organisation_id AND d.group_id = OLD.group_id
           AND d.day = date_trunc('day', OLD.created_at, 'UTC')
           AND d.previous_day IS NOT DISTINCT FROM date_trunc('day', OLD.previous_at, 'UTC')
           AND d.previous_gap_day
               IS NOT DISTINCT FROM date_trunc('day', OLD.previous_gap_at, 'UTC')
           AND d.assistant_id IS NOT DISTINCT FROM OLD.assistant_id
           AND d.channel = OLD.channel AND d.cause = OLD.cause
        RETURNING d.* INTO kept;
        IF kept.questions = 0 THEN
            DELETE FROM knowledge_gap_days WHERE id = kept.id;
        ELSIF OLD.created_at IN (kept.first_seen, kept.last_seen) THEN
            -- The row's first or last question left: read the others'. An AFTER trigger
            -- sees the whole statement's rows written, so when none is left the row's
            -- count reaches zero by the statement's other rows' turns.
            UPDATE knowledge_gap_days d
               SET first_seen = coalesce(s.first_seen, d.first_seen),
                   last_seen = coalesce(s.last_seen, d.last_seen)
              FROM (SELECT min(q.created_at) AS first_seen, max(q.created_at) AS last_seen
                      FROM knowledge_gap_questions q
                     WHERE q.group_id = kept.group_id
                       AND q.created_at >= kept.day
                       AND q.created_at < kept.day + interval '24 hours'
                       AND q.organisation_id = kept.organisation_id
                       AND date_trunc('day', q.previous_at, 'UTC')
                           IS NOT DISTINCT FROM kept.previous_day
                       AND date_trunc('day', q.previous_gap_at, 'UTC')
                           IS NOT DISTINCT FROM kept.previous_gap_day
                       AND q.assistant_id IS NOT DISTINCT FROM kept.assistant_id
                       AND q.channel = kept.channel AND q.cause = kept.cause) AS s
             WHERE d.id = kept.id;
        END IF;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.group_id IS NOT NULL THEN
        INSERT INTO knowledge_gap_days AS d
               (id, organisation_id, created_at, updated_at, group_id, day, previous_day,
                previous_gap_day, assistant_id, channel, cause, questions, first_seen,
                last_seen)
        VALUES (gen_random_uuid(), NEW.organisation_id,
                date_trunc('day', NEW.created_at, 'UTC') + interval '24 hours', now(),
                NEW.group_id, date_trunc('day', NEW.created_at, 'UTC'),
                date_trunc('day', NEW.previous_at, 'UTC'),
                date_trunc('day', NEW.previous_gap_at, 'UTC'), NEW.assistant_id, NEW.channel,
                NEW.cause, 1, NEW.created_at, NEW.created_at)
        ON CONFLICT (organisation_id, group_id, day, previous_day, previous_gap_day,
                     assistant_id, channel, cause)
        DO UPDATE SET questions = d.questions + 1,
                      first_seen = least(d.first_seen, excluded.first_seen),
                      last_seen = greatest(d.last_seen, excluded.last_seen),
                      updated_at = now();
    END IF;
    RETURN NULL;
END;
$$;
