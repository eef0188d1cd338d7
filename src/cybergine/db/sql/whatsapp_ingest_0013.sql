CREATE OR REPLACE FUNCTION cybergine_whatsapp_ingest(batch jsonb, names jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
-- Deliveries of WhatsApp's webhook, as channels/whatsapp/ingest.delivery_items builds
-- them: one event row per change, its messages recorded by cybergine_record_inbound
-- (the rule of every channel), and its statuses moving our messages forward. ``names``
-- is ingest.INGEST_NAMES: what Python names, nothing of it written here.
--
-- Returns the counts and, per message, what cybergine_record_inbound returned.
DECLARE
    item jsonb;
    s jsonb;
    v_org uuid;
    v_at timestamptz;
    v_status message_status;
    r record;
    v_notify constant text := names->>'notify_channel';
    part jsonb;
    e jsonb;
    -- appended in place (an expanded array), where jsonb || would copy it each time
    recorded jsonb[] := '{}';
    stored int := 0;
    duplicates int := 0;
    updated int := 0;
BEGIN
    FOR item IN SELECT value FROM jsonb_array_elements(batch) LOOP
        v_org := (item->'account'->>'org')::uuid;
        INSERT INTO whatsapp_webhook_events
            (id, organisation_id, whatsapp_number_id, field, value, messages, statuses,
             problems, created_at, updated_at)
        VALUES ((item->>'event_id')::uuid, v_org, (item->'account'->>'number')::uuid,
                item->>'field', item->'value', jsonb_array_length(item->'messages'),
                (item->>'statuses_received')::int, item->>'problems', now(), now());
        IF NOT (item->>'active')::boolean THEN
            CONTINUE;  -- kept as an event; a paused number starts nothing
        END IF;
        IF jsonb_array_length(item->'messages') > 0 THEN
            part := cybergine_record_inbound(item->'account', item->'messages', names);
            FOR e IN SELECT value FROM jsonb_array_elements(part) LOOP
                recorded := array_append(recorded, e);
                IF e->>'m' IS NULL THEN
                    duplicates := duplicates + 1;
                ELSE
                    stored := stored + 1;
                END IF;
            END LOOP;
        END IF;

        -- Forward only (deliveries arrive out of order; "read" may come before
        -- "delivered"); matched by Meta's id (or its keyed hash, once its customer was
        -- erased), or by ours echoed in biz_opaque_callback_data when the status
        -- overtakes the commit of its send.
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
                   AND (external_id IN (s->>'wamid', s->>'erased_wamid')
                        OR id = (s->>'callback')::uuid)
                RETURNING id, conversation_id
            LOOP
                PERFORM pg_notify(v_notify, json_build_object(
                    'o', v_org, 'c', r.conversation_id, 'k', 'message', 'm', r.id,
                    'u', NULL, 'd', '{}'::json)::text);
                updated := updated + 1;
            END LOOP;
        END LOOP;
    END LOOP;
    RETURN jsonb_build_object(
        'messages', stored,
        'duplicates', duplicates,
        'statuses', updated,
        'recorded', to_jsonb(recorded));
END
$$;
