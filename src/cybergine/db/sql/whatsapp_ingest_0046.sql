CREATE OR REPLACE FUNCTION cybergine_whatsapp_ingest(batch jsonb, names jsonb) RETURNS jsonb
LANGUAGE plpgsql
-- Its statements read messages, which are partitioned (db.partitions). Planned anew at
-- each call, as PostgreSQL chose for them, they opened and locked every index of every
-- partition; one generic plan per connection brings a call back to what it cost before
-- the partitions (bench/whatsapp.py: PostgreSQL's CPU per delivery).
SET plan_cache_mode = force_generic_plan
AS $$
-- Deliveries of WhatsApp's webhook, as channels/whatsapp/ingest.delivery_items builds
-- them: one event row per change, its messages recorded by cybergine_record_inbound
-- (the rule of every channel), and its statuses moving our messages forward. ``names``
-- is ingest.INGEST_NAMES: what Python names, nothing of it written here.
--
-- The event row keeps nothing of a customer erased before Meta's delivery came: their
-- messages delivered again, their contact entry and the statuses of what was sent to
-- them leave it, since a wamid is base64 of a structure holding the phone number.
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
    -- of the current item: the wamids and numbers of erased customers it names
    v_hidden text[];
    v_hidden_from text[];
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
        v_hidden := '{}';
        v_hidden_from := '{}';
        IF jsonb_array_length(item->'messages') > 0 THEN
            part := cybergine_record_inbound(item->'account', item->'messages', names);
            FOR e IN SELECT value FROM jsonb_array_elements(part) LOOP
                recorded := array_append(recorded, e);
                IF (e->>'erased')::boolean THEN
                    SELECT array_append(v_hidden, msg->>'external_id'),
                           array_append(v_hidden_from, msg->>'customer')
                      INTO v_hidden, v_hidden_from
                      FROM jsonb_array_elements(item->'messages') AS msg
                     WHERE msg->'id' = e->'k';
                END IF;
                IF e->>'m' IS NULL THEN
                    duplicates := duplicates + 1;
                ELSE
                    stored := stored + 1;
                END IF;
            END LOOP;
        END IF;

        -- Forward only (deliveries arrive out of order; "read" may come before
        -- "delivered"); matched by Meta's id (or its keyed hash, once its customer was
        -- erased), else by ours echoed in biz_opaque_callback_data when the status
        -- overtakes the commit of its send. One key after the other, each a lookup of
        -- the whole unique index, which its plan takes whatever the statistics say:
        -- asked for any of them at once, a plan made while the table looked small read
        -- every message of the organisation, for as long as the connection kept it.
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
                   AND id = coalesce(
                       (SELECT sent.id FROM messages AS sent
                         WHERE sent.organisation_id = v_org
                           AND sent.external_id = s->>'wamid'
                           AND sent.direction = 'outbound'
                         LIMIT 1),
                       (SELECT sent.id FROM messages AS sent
                         WHERE sent.organisation_id = v_org
                           AND sent.external_id = s->>'erased_wamid'
                           AND sent.direction = 'outbound'
                         LIMIT 1),
                       (s->>'callback')::uuid)
                RETURNING id, conversation_id, external_id = s->>'erased_wamid' AS erased
            LOOP
                PERFORM pg_notify(v_notify, json_build_object(
                    'o', v_org, 'c', r.conversation_id, 'k', 'message', 'm', r.id,
                    'u', NULL, 'd', '{}'::json)::text);
                updated := updated + 1;
                IF r.erased THEN
                    v_hidden := array_append(v_hidden, s->>'wamid');
                END IF;
            END LOOP;
        END LOOP;
        IF cardinality(v_hidden) > 0 THEN
            UPDATE whatsapp_webhook_events
               SET value = value - 'messages' - 'statuses' - 'contacts'
                   || coalesce((SELECT jsonb_build_object('messages', jsonb_agg(x))
                                  FROM jsonb_array_elements(value->'messages') AS x
                                 WHERE NOT x->>'id' = ANY(v_hidden)), '{}')
                   || coalesce((SELECT jsonb_build_object('statuses', jsonb_agg(x))
                                  FROM jsonb_array_elements(value->'statuses') AS x
                                 WHERE NOT x->>'id' = ANY(v_hidden)), '{}')
                   || coalesce((SELECT jsonb_build_object('contacts', jsonb_agg(x))
                                  FROM jsonb_array_elements(value->'contacts') AS x
                                 WHERE NOT x->>'wa_id' = ANY(v_hidden_from)), '{}')
             WHERE id = (item->>'event_id')::uuid;
        END IF;
    END LOOP;
    RETURN jsonb_build_object(
        'messages', stored,
        'duplicates', duplicates,
        'statuses', updated,
        'recorded', to_jsonb(recorded));
END
$$;
