CREATE OR REPLACE FUNCTION cybergine_record_inbound(account jsonb, messages jsonb, names jsonb)
RETURNS jsonb
LANGUAGE plpgsql
-- Its statements read messages, which are partitioned (db.partitions). Planned anew at
-- each call, as PostgreSQL chose for them, they opened and locked every index of every
-- partition; one generic plan per connection brings a call back to what it cost before
-- the partitions (bench/whatsapp.py: PostgreSQL's CPU per delivery).
SET plan_cache_mode = force_generic_plan
AS $$
-- What a customer wrote, on any channel, stored with what it calls for: the customer
-- (created on first contact), their open conversation on this channel account (locked
-- until commit, so message ids follow commit order), the message once (a delivery seen
-- before inserts nothing and moves nothing), the conversation's counters, the NOTIFY
-- that live views wait for, and the reply job when the assistant should answer.
--
-- ``account``: org, channel, number (the WhatsApp number; null for web chat), assistant.
-- ``messages``: built by conversations.inbound.message_item; ``answerable`` says whether
-- the message asks for an answer at all (not a reaction or a consent word), and this
-- function adds whether the conversation and the customer allow one; ``job_arguments``
-- is what the reply job carries besides the message's id (the receiving request's trace
-- context when traces are on, cybergine.observability.tracing), added to its arguments.
-- ``names``: what Python names (conversations.inbound.RECORD_NAMES): the NOTIFY channel
-- and the reply job's task, queue and lock prefix; nothing of them is written here.
--
-- A customer who opted out (STOP) gets the reply job too: the assistant answers them
-- nothing (the reply verdict), but a right their words exercise ("delete my data") is
-- recorded for the team by it (privacy policy §14).
--
-- A message whose customer was erased since (its stored id is the keyed hash the item
-- brings as ``erased_external_id``) is such a duplicate too: Meta delivering it again
-- must not bring the customer back (privacy policy §14).
--
-- Returns one object per message, in order: k (the item's key), m (the stored id, null
-- for a duplicate), c (conversation), u (customer), out (opted out), r (reply deferred),
-- and erased (true only for the message of an erased customer).
DECLARE
    m jsonb;
    v_org constant uuid := (account->>'org')::uuid;
    v_channel constant text := account->>'channel';
    v_number constant uuid := (account->>'number')::uuid;
    v_assistant constant uuid := (account->>'assistant')::uuid;
    v_notify constant text := names->>'notify_channel';
    v_reply_task constant text := names->>'reply_task';
    v_reply_queue constant text := names->>'reply_queue';
    v_reply_lock constant text := names->>'reply_lock_prefix';
    v_customer uuid;
    v_opted_out timestamptz;
    v_conversation uuid;
    v_state conversation_state;
    v_last uuid;
    v_message uuid;
    v_at timestamptz;
    v_reply boolean;
    -- appended in place (an expanded array), where jsonb || would copy it each time
    recorded jsonb[] := '{}';
    -- keyed hash of an erased message's id -> its conversation and customer
    v_erased jsonb;
BEGIN
    -- One probe per message, through each partition's index of (organisation, external
    -- id), the only one of its indexes that leads with the organisation (db.partitions):
    -- a join of the batch with the organisation's messages may be planned as a read of
    -- all of them, for each batch, while the table looks small (a new database).
    SELECT coalesce(jsonb_object_agg(hit.external_id, jsonb_build_object(
               'c', hit.conversation_id, 'u', hit.customer_id)), '{}'::jsonb)
      INTO v_erased
      FROM jsonb_array_elements(messages) AS item
     CROSS JOIN LATERAL (
           SELECT msg.external_id, msg.conversation_id, conv.customer_id
             FROM messages AS msg
             JOIN conversations AS conv ON conv.id = msg.conversation_id
            WHERE msg.organisation_id = v_org
              AND msg.external_id = item->>'erased_external_id'
            LIMIT 1) AS hit;
    FOR m IN SELECT value FROM jsonb_array_elements(messages) LOOP
        IF v_erased ? (m->>'erased_external_id') THEN
            recorded := array_append(recorded, jsonb_build_object(
                'k', m->'id', 'm', NULL, 'c', v_erased->(m->>'erased_external_id')->'c',
                'u', v_erased->(m->>'erased_external_id')->'u', 'out', false, 'r', false,
                'erased', true));
            CONTINUE;
        END IF;
        v_at := (m->>'sent_at')::timestamptz;
        -- Writing first is consent to be answered (WhatsApp's customer-initiated
        -- conversation); marketing would need more and is never sent.
        INSERT INTO customers AS c
            (id, organisation_id, channel, external_id, phone_number, display_name,
             opted_in_at, opt_in_source, created_at, updated_at)
        VALUES ((m->>'customer_id')::uuid, v_org, v_channel::channel, m->>'customer',
                m->>'phone', m->>'name', v_at, 'customer_message', now(), now())
        ON CONFLICT (organisation_id, channel, external_id) DO UPDATE
            SET display_name = coalesce(EXCLUDED.display_name, c.display_name),
                phone_number = coalesce(EXCLUDED.phone_number, c.phone_number)
        RETURNING c.id, c.opted_out_at INTO v_customer, v_opted_out;

        v_conversation := NULL;
        SELECT id, state, last_message_id INTO v_conversation, v_state, v_last
          FROM conversations
         WHERE customer_id = v_customer AND whatsapp_number_id IS NOT DISTINCT FROM v_number
           AND state <> 'closed'
           FOR UPDATE;
        IF v_conversation IS NULL THEN
            INSERT INTO conversations
                (id, organisation_id, channel, customer_id, assistant_id,
                 whatsapp_number_id, state, human_review_requested, unread_count,
                 created_at, updated_at)
            VALUES ((m->>'conversation_id')::uuid, v_org, v_channel::channel, v_customer,
                    v_assistant, v_number, 'bot', false, 0, now(), now())
            ON CONFLICT DO NOTHING
            RETURNING id, state, last_message_id INTO v_conversation, v_state, v_last;
            IF v_conversation IS NULL THEN  -- another writer opened it just now
                SELECT id, state, last_message_id INTO v_conversation, v_state, v_last
                  FROM conversations
                 WHERE customer_id = v_customer
                   AND whatsapp_number_id IS NOT DISTINCT FROM v_number
                   AND state <> 'closed'
                   FOR UPDATE;
            END IF;
        END IF;

        v_message := (m->>'id')::uuid;
        IF v_last IS NOT NULL AND v_message <= v_last THEN
            v_message := cybergine_uuid_after(v_last);
        END IF;
        -- A delivery seen before stores nothing. Messages are partitioned by the year of
        -- their id, each partition unique in external ids on its own (db.partitions), so the
        -- key is asked for across all of them: in a statement of its own, after the
        -- conversation's lock, whose snapshot sees what the writer that held the lock
        -- before committed (every delivery of a message is its customer's, so it waits
        -- for the same conversation's lock, or finds it closed and the message stored).
        IF m->>'external_id' IS NOT NULL AND EXISTS (
               SELECT 1 FROM messages
                WHERE organisation_id = v_org AND external_id = m->>'external_id') THEN
            v_message := NULL;
        ELSE
            INSERT INTO messages
                (id, organisation_id, conversation_id, direction, sender, type, text,
                 payload, external_id, context_external_id, status, send_attempts,
                 sent_at, created_at, updated_at)
            VALUES (v_message, v_org, v_conversation, 'inbound', 'customer', m->>'type',
                    m->>'text', nullif(m->'payload', 'null'::jsonb), m->>'external_id',
                    m->>'context', 'received', 0, v_at, now(), now());
        END IF;

        v_reply := false;
        IF v_message IS NOT NULL THEN
            UPDATE conversations
               SET last_inbound_at = greatest(last_inbound_at, v_at),
                   last_message_at = now(),
                   unread_count = unread_count + 1,
                   last_message_id = v_message,
                   updated_at = now()
             WHERE id = v_conversation;
            PERFORM pg_notify(v_notify, json_build_object(
                'o', v_org, 'c', v_conversation, 'k', 'message', 'm', v_message,
                'u', v_customer, 'd', '{}'::json)::text);
            v_reply := (m->>'answerable')::boolean AND v_state = 'bot'
                       AND v_assistant IS NOT NULL;
            IF v_reply THEN
                PERFORM procrastinate_defer_jobs_v1(ARRAY[ROW(
                    v_reply_queue, v_reply_task, 0, v_reply_lock || v_conversation,
                    NULL, jsonb_build_object('message_id', v_message::text)
                          || coalesce(m->'job_arguments', '{}'::jsonb),
                    NULL
                )]::procrastinate_job_to_defer_v1[]);
            END IF;
        END IF;
        recorded := array_append(recorded, jsonb_build_object(
            'k', m->'id', 'm', v_message, 'c', v_conversation, 'u', v_customer,
            'out', v_opted_out IS NOT NULL, 'r', v_reply));
    END LOOP;
    RETURN to_jsonb(recorded);
END
$$;
