"""The data bench/privacy.py seeds, as set-based SQL (``generate_series``): the rights
section's organisation (customers with thousands of messages, photos and Meta's raw
deliveries) and the purge section's (conversations long expired beside active ones).

Parameters are named (``:org``); each statement runs in a transaction of its own."""

EXPIRED_DAYS_AGO = 60
PERIOD_DAYS = 30
FIRST_WA_ID = 447700000000  # the rights section's customers: FIRST_WA_ID + n
OTHER_CUSTOMER_MESSAGES = 50

RIGHTS_SEED = [
    "INSERT INTO organisations (id, name) VALUES (:org, 'Rights Shop')",
    """INSERT INTO whatsapp_numbers (id, organisation_id, phone_number_id, waba_id,
                                  display_phone_number, access_token, opt_out_keywords,
                                  opt_in_keywords, active)
       VALUES (:number, :org, '3000001', '3000002', '+1 555 3000001', 'not-a-token',
               '{}', '{}', true)""",
    # The measured customers first (n <= :reps), then the others.
    """INSERT INTO customers (id, organisation_id, channel, external_id, phone_number,
                            display_name, created_at, updated_at)
       SELECT gen_random_uuid(), :org, 'whatsapp', (:first + n)::text, '+' || (:first + n),
              'Customer ' || n, now() - interval '90 days', now()
       FROM generate_series(1, :reps + :others) AS n""",
    # One open conversation per customer and number (the latest), the others closed.
    """INSERT INTO conversations (id, organisation_id, channel, customer_id, whatsapp_number_id,
                                state, human_review_requested, unread_count, last_message_at,
                                closed_at, created_at)
       SELECT gen_random_uuid(), :org, 'whatsapp', u.id, :number,
              (CASE WHEN k = 1 THEN 'bot' ELSE 'closed' END)::conversation_state, false, 0,
              now() - make_interval(days => k),
              CASE WHEN k > 1 THEN now() - make_interval(days => k) END,
              now() - make_interval(days => 80 - k)
       FROM customers u, generate_series(1, :per_customer) AS k
       WHERE u.organisation_id = :org AND (u.external_id::bigint - :first <= :reps OR k = 1)""",
    # Questions and answers in turn, spread over each customer's conversations; the
    # measured customers' first inbound messages are the images.
    """INSERT INTO messages (id, organisation_id, conversation_id, direction, sender, type,
                           text, external_id, status, send_attempts, created_at, updated_at)
       SELECT gen_random_uuid(), :org, v.id,
              (CASE WHEN n % 2 = 0 THEN 'inbound' ELSE 'outbound' END)::message_direction,
              (CASE WHEN n % 2 = 0 THEN 'customer' ELSE 'assistant' END)::message_sender,
              CASE WHEN v.measured AND n % 2 = 0 AND n <= 2 * :attachments THEN 'image'
                   ELSE 'text' END,
              CASE WHEN n % 2 = 0 THEN 'Where is my order ' || n || '? ' || v.display_name
                   ELSE 'Order ' || n || ' left our warehouse and arrives in two days.' END,
              'wamid.' || v.external_id || '.' || n,
              (CASE WHEN n % 2 = 0 THEN 'received' ELSE 'read' END)::message_status,
              n % 2, v.created_at + make_interval(secs => n),
              v.created_at + make_interval(secs => n)
       FROM (SELECT c.id, c.created_at, u.external_id, u.display_name,
                    u.external_id::bigint - :first <= :reps AS measured,
                    row_number() OVER (PARTITION BY c.customer_id ORDER BY c.id) - 1 AS position,
                    count(*) OVER (PARTITION BY c.customer_id) AS total
             FROM conversations c JOIN customers u ON u.id = c.customer_id
             WHERE c.organisation_id = :org) AS v
       JOIN generate_series(1, :messages) AS n ON n % v.total = v.position
       WHERE v.measured OR n <= :other_messages""",
    # Incompressible bytes, as a photo's are (TOAST would shrink repeated ones to nothing).
    """INSERT INTO message_attachments (id, organisation_id, message_id, media_id, status,
                                      mime_type, size_bytes, data)
       SELECT gen_random_uuid(), :org, m.id, 'media-' || m.external_id, 'stored',
              'image/jpeg', octet_length(photo.bytes), photo.bytes
       FROM messages m,
            (SELECT string_agg(uuid_send(gen_random_uuid()), ''::bytea) AS bytes
             FROM generate_series(1, :attachment_bytes / 16)) AS photo
       WHERE m.organisation_id = :org AND m.type = 'image'""",
    # Meta's raw deliveries: each inbound message with its contact, each answer's status.
    """INSERT INTO whatsapp_webhook_events (id, organisation_id, whatsapp_number_id, field,
                                          value, messages, statuses, created_at, updated_at)
       SELECT gen_random_uuid(), :org, :number, 'messages',
              jsonb_build_object(
                'messaging_product', 'whatsapp',
                'metadata', jsonb_build_object('display_phone_number', '15553000001',
                                               'phone_number_id', '3000001'),
                CASE WHEN m.direction = 'inbound' THEN 'contacts' ELSE 'statuses' END,
                CASE WHEN m.direction = 'inbound' THEN jsonb_build_array(jsonb_build_object(
                       'profile', jsonb_build_object('name', u.display_name),
                       'wa_id', u.external_id))
                     ELSE jsonb_build_array(jsonb_build_object(
                       'id', m.external_id, 'status', 'read', 'recipient_id', u.external_id,
                       'timestamp', extract(epoch FROM m.created_at)::bigint::text)) END)
              || CASE WHEN m.direction = 'inbound' THEN jsonb_build_object(
                   'messages', jsonb_build_array(jsonb_build_object(
                     'from', u.external_id, 'id', m.external_id, 'type', m.type,
                     'timestamp', extract(epoch FROM m.created_at)::bigint::text,
                     'text', jsonb_build_object('body', m.text))))
                 ELSE '{}'::jsonb END,
              (m.direction = 'inbound')::int, (m.direction = 'outbound')::int,
              m.created_at, m.created_at
       FROM messages m
       JOIN conversations c ON c.id = m.conversation_id
       JOIN customers u ON u.id = c.customer_id
       WHERE m.organisation_id = :org""",
]

PURGE_SEED = [
    "INSERT INTO organisations (id, name) VALUES (:org, 'Purge Shop')",
    """INSERT INTO retention_settings (id, organisation_id, conversation_days)
       VALUES (gen_random_uuid(), :org, :period)""",
    # Customers and conversations: the first half expired, the second half active.
    """INSERT INTO customers (id, organisation_id, channel, external_id, created_at, updated_at)
       SELECT gen_random_uuid(), :org, 'whatsapp', 'bench-' || n,
              now() - make_interval(days => CASE WHEN n <= :conversations THEN :old ELSE 0 END),
              now() - make_interval(days => CASE WHEN n <= :conversations THEN :old ELSE 0 END)
       FROM generate_series(1, 2 * :conversations) AS n""",
    """INSERT INTO conversations (id, organisation_id, channel, customer_id, state,
                                 human_review_requested, unread_count, last_message_at,
                                 created_at)
       SELECT gen_random_uuid(), :org, 'whatsapp', id, 'bot', false, 0,
              created_at, created_at
       FROM customers WHERE organisation_id = :org""",
    """INSERT INTO messages (id, organisation_id, conversation_id, direction, sender, type,
                            text, status, send_attempts, created_at, updated_at)
       SELECT gen_random_uuid(), :org, c.id, 'inbound', 'customer', 'text',
              'Where is my order number ' || n || '?', 'received', 0,
              c.last_message_at, c.last_message_at
       FROM (SELECT id, last_message_at, row_number() OVER (ORDER BY id) AS position
             FROM conversations WHERE organisation_id = :org
             AND last_message_at < now() - make_interval(days => :period)) AS c
       JOIN generate_series(1, :messages) AS n ON n % :conversations = c.position - 1""",
    # The active conversations get a few messages each: they must all survive.
    """INSERT INTO messages (id, organisation_id, conversation_id, direction, sender, type,
                            text, status, send_attempts, created_at, updated_at)
       SELECT gen_random_uuid(), :org, c.id, 'inbound', 'customer', 'text', 'Still here',
              'received', 0, now(), now()
       FROM conversations c, generate_series(1, 3)
       WHERE c.organisation_id = :org AND c.last_message_at > now() - interval '1 day'""",
    """INSERT INTO message_attachments (id, organisation_id, message_id, media_id, status,
                                       mime_type, size_bytes, data)
       SELECT gen_random_uuid(), :org, id, 'media-' || id, 'stored', 'image/png', 1024,
              decode(repeat('ab', 1024), 'hex')
       FROM messages WHERE organisation_id = :org AND text LIKE '%0?'
       AND created_at < now() - make_interval(days => :period)""",
]
EXPIRED = (
    "SELECT count(*) FROM messages WHERE organisation_id = :org"
    f" AND created_at < now() - interval '{PERIOD_DAYS} days'"
)
ALL_MESSAGES = "SELECT count(*) FROM messages WHERE organisation_id = :org"
