CREATE OR REPLACE FUNCTION cybergine_whatsapp_ingest(batch jsonb, names jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
-- The hot path of channels/whatsapp/ingest.py (fast_items builds the batch); the rules
-- are those of conversations.service.record_inbound and ingest.apply_status. ``names``
-- holds what Python names: the NOTIFY channel, the reply job's task, queue and lock
-- prefix (ingest.INGEST_NAMES); nothing of them is written here.
DECLARE
    item jsonb;
    m jsonb;
    s jsonb;
    v_org uuid;
    v_number uuid;
    v_assistant uuid;
    v_customer uuid;
    v_opted_out timestamptz;
    v_conversation uuid;
    v_state conversation_state;
    v_last uuid;
    v_message uuid;
    v_at timestamptz;
    v_status message_status;
    r record;
    v_channel constant text := names->>'channel';
    v_reply_task constant text := names->>'reply_task';
    v_reply_queue constant text := names->>'reply_queue';
    v_reply_lock constant text := names->>'reply_lock_prefix';
    stored int := 0;
    duplicates int := 0;
    updated int := 0;
BEGIN
    FOR item IN SELECT value FROM jsonb_array_elements(batch) LOOP
        v_org := (item->>'org')::uuid;
        v_number := (item->>'number')::uuid;
        v_assistant := (item->>'assistant')::uuid;
        INSERT INTO whatsapp_webhook_events
            (id, organisation_id, whatsapp_number_id, field, value, messages, statuses,
             problems, created_at, updated_at)
        VALUES ((item->>'event_id')::uuid, v_org, v_number, item->>'field', item->'value',
                jsonb_array_length(item->'messages'), (item->>'statuses_received')::int,
                item->>'problems', now(), now());
        IF NOT (item->>'active')::boolean THEN
            CONTINUE;  -- kept as an event; a paused number starts nothing
        END IF;

        FOR m IN SELECT value FROM jsonb_array_elements(item->'messages') LOOP
            v_at := (m->>'sent_at')::timestamptz;
            INSERT INTO customers AS c
                (id, organisation_id, channel, external_id, phone_number, display_name,
                 opted_in_at, opt_in_source, created_at, updated_at)
            VALUES ((m->>'customer_id')::uuid, v_org, 'whatsapp', m->>'wa_id', m->>'phone',
                    m->>'name', v_at, 'customer_message', now(), now())
            ON CONFLICT (organisation_id, channel, external_id) DO UPDATE
                SET display_name = coalesce(EXCLUDED.display_name, c.display_name),
                    phone_number = coalesce(EXCLUDED.phone_number, c.phone_number)
            RETURNING c.id, c.opted_out_at INTO v_customer, v_opted_out;

            -- The open conversation, locked until commit (message ids follow commit order).
            v_conversation := NULL;
            SELECT id, state, last_message_id INTO v_conversation, v_state, v_last
              FROM conversations
             WHERE customer_id = v_customer AND whatsapp_number_id = v_number
               AND state <> 'closed'
               FOR UPDATE;
            IF v_conversation IS NULL THEN
                INSERT INTO conversations
                    (id, organisation_id, channel, customer_id, assistant_id,
                     whatsapp_number_id, state, human_review_requested, unread_count,
                     created_at, updated_at)
                VALUES ((m->>'conversation_id')::uuid, v_org, 'whatsapp', v_customer,
                        v_assistant, v_number, 'bot', false, 0, now(), now())
                ON CONFLICT DO NOTHING
                RETURNING id, state, last_message_id INTO v_conversation, v_state, v_last;
                IF v_conversation IS NULL THEN  -- another delivery opened it just now
                    SELECT id, state, last_message_id INTO v_conversation, v_state, v_last
                      FROM conversations
                     WHERE customer_id = v_customer AND whatsapp_number_id = v_number
                       AND state <> 'closed'
                       FOR UPDATE;
                END IF;
            END IF;

            v_message := (m->>'id')::uuid;
            IF v_last IS NOT NULL AND v_message <= v_last THEN
                v_message := cybergine_uuid_after(v_last);
            END IF;
            INSERT INTO messages
                (id, organisation_id, conversation_id, direction, sender, type, text,
                 payload, external_id, context_external_id, status, send_attempts, sent_at,
                 created_at, updated_at)
            VALUES (v_message, v_org, v_conversation, 'inbound', 'customer', m->>'type',
                    m->>'text', nullif(m->'payload', 'null'::jsonb), m->>'external_id',
                    m->>'context', 'received', 0, v_at, now(), now())
            ON CONFLICT (organisation_id, external_id) WHERE external_id IS NOT NULL
                DO NOTHING
            RETURNING id INTO v_message;
            IF v_message IS NULL THEN
                duplicates := duplicates + 1;  -- Meta delivered it again: once is enough
                CONTINUE;
            END IF;

            UPDATE conversations
               SET last_inbound_at = greatest(last_inbound_at, v_at),
                   last_message_at = now(),
                   unread_count = unread_count + 1,
                   last_message_id = v_message,
                   updated_at = now()
             WHERE id = v_conversation;
            PERFORM pg_notify(v_channel, json_build_object(
                'o', v_org, 'c', v_conversation, 'k', 'message', 'm', v_message,
                'u', v_customer, 'd', '{}'::json)::text);
            IF (m->>'answerable')::boolean AND v_state = 'bot' AND v_assistant IS NOT NULL
               AND v_opted_out IS NULL THEN
                PERFORM procrastinate_defer_jobs_v1(ARRAY[ROW(
                    v_reply_queue, v_reply_task, 0, v_reply_lock || v_conversation,
                    NULL, jsonb_build_object('message_id', v_message::text), NULL
                )]::procrastinate_job_to_defer_v1[]);
            END IF;
            stored := stored + 1;
        END LOOP;

        FOR s IN SELECT value FROM jsonb_array_elements(item->'statuses') LOOP
            v_status := (s->>'status')::message_status;
            v_at := (s->>'at')::timestamptz;
            FOR r IN
                UPDATE messages
                   SET status = greatest(status, v_status),
                       external_id = coalesce(external_id, s->>'wamid'),
                       sent_at = CASE WHEN v_status = 'failed' THEN sent_at
                                      ELSE coalesce(sent_at, v_at) END,
                       delivered_at = CASE WHEN v_status IN ('delivered', 'read')
                                           THEN coalesce(delivered_at, v_at)
                                           ELSE delivered_at END,
                       read_at = CASE WHEN v_status = 'read' THEN coalesce(read_at, v_at)
                                      ELSE read_at END,
                       failed_at = CASE WHEN v_status = 'failed'
                                        THEN coalesce(failed_at, v_at) ELSE failed_at END,
                       error_code = CASE WHEN v_status = 'failed'
                                         THEN (s->>'error_code')::int ELSE error_code END,
                       error_title = CASE WHEN v_status = 'failed'
                                          THEN s->>'error_title' ELSE error_title END,
                       error_detail = CASE WHEN v_status = 'failed'
                                           THEN s->>'error_detail' ELSE error_detail END,
                       updated_at = now()
                 WHERE organisation_id = v_org AND direction = 'outbound'
                   AND (external_id = s->>'wamid' OR id = (s->>'callback')::uuid)
                RETURNING id, conversation_id
            LOOP
                PERFORM pg_notify(v_channel, json_build_object(
                    'o', v_org, 'c', r.conversation_id, 'k', 'message', 'm', r.id,
                    'u', NULL, 'd', '{}'::json)::text);
                updated := updated + 1;
            END LOOP;
        END LOOP;
    END LOOP;
    RETURN jsonb_build_object('messages', stored, 'duplicates', duplicates, 'statuses', updated);
END
$$;
