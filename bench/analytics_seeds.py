"""The history bench/analytics.py seeds, as set-based SQL (``generate_series``): one
organisation, two assistants (one keeping business hours), ``:conversations``
conversations spread evenly over the last ``:days`` days, two per customer, with
``:messages`` messages each (the customer and the assistant in turn; one conversation in
ten handed to a person, whose agent then writes; one answer in eight a fallback; grounded
answers cite a source and count tokens). Parameters are named (``:org``); each statement
runs in a transaction of its own."""

SEED = [
    "INSERT INTO organisations (id, name) VALUES (:org, 'Analytics Shop')",
    """INSERT INTO assistants (id, organisation_id, name, persona, instructions, tone,
                             languages, greeting, fallback_message, ai_disclosure,
                             knowledge_collections, llm_provider, llm_model, temperature,
                             max_tokens, redact_personal_data, business_hours,
                             handoff_keywords, active, widget_key, allowed_origins, widget)
       SELECT a.id, :org, a.name, '', '', 'friendly', '{en}', '', 'Sorry.', 'AI.', '{}',
              'extractive', 'none', 0.2, 500, true, a.hours, '{}', true, a.widget, '{}', '{}'
       FROM (VALUES (:assistant_a, 'Shop', '{"timezone": "Europe/Paris", "days":
                     {"mon": [["09:00", "18:00"]], "tue": [["09:00", "18:00"]],
                      "wed": [["09:00", "18:00"]], "thu": [["09:00", "18:00"]],
                      "fri": [["09:00", "18:00"]]}}'::jsonb, 'bench-widget-a'),
                    (:assistant_b, 'After hours', NULL::jsonb, 'bench-widget-b'))
            AS a(id, name, hours, widget)""",
    """INSERT INTO customers (id, organisation_id, channel, external_id, display_name,
                            created_at, updated_at)
       SELECT gen_random_uuid(), :org, 'whatsapp', 'bench-' || n, 'Customer ' || n,
              now() - make_interval(days => :days), now()
       FROM generate_series(1, (:conversations + 1) / 2) AS n""",
    # Conversation n of customer n mod half: the older of a customer's two is closed, so
    # one open conversation per customer at most.
    """INSERT INTO conversations (id, organisation_id, channel, customer_id, assistant_id,
                                state, human_review_requested, unread_count, handoff_at,
                                handoff_reason, last_message_at, closed_at, created_at,
                                updated_at)
       SELECT gen_random_uuid(), :org,
              (CASE WHEN n % 3 = 0 THEN 'webchat' ELSE 'whatsapp' END)::channel,
              u.id, CASE WHEN n % 4 = 0 THEN CAST(:assistant_b AS uuid)
                         ELSE CAST(:assistant_a AS uuid) END,
              (CASE WHEN n <= :conversations / 2 OR n % 5 = 0 THEN 'closed'
                    WHEN n % 10 = 1 THEN 'human' ELSE 'bot' END)::conversation_state,
              false, 0,
              CASE WHEN n % 10 = 1 THEN start + interval '150 seconds' END,
              CASE WHEN n % 10 = 1 THEN 'customer_request' END,
              start + make_interval(secs => 30 * :messages),
              CASE WHEN n <= :conversations / 2 OR n % 5 = 0
                   THEN start + make_interval(secs => 30 * :messages + 600) END,
              start, start
       FROM (SELECT n, now() - make_interval(days => :days)
                       + make_interval(secs => n * (:days * 86400.0 / :conversations)) AS start
             FROM generate_series(1, :conversations) AS n) AS s
       JOIN customers u ON u.organisation_id = :org AND u.channel = 'whatsapp'
                       AND u.external_id
                           = 'bench-' || (1 + (n - 1) % ((:conversations + 1) / 2))""",
    """INSERT INTO messages (id, organisation_id, conversation_id, direction, sender, type,
                           text, status, send_attempts, grounded, sources, llm_provider,
                           llm_model, prompt_tokens, completion_tokens, created_at, updated_at)
       SELECT gen_random_uuid(), :org, c.id,
              (CASE WHEN k % 2 = 1 THEN 'inbound' ELSE 'outbound' END)::message_direction,
              (CASE WHEN k % 2 = 1 THEN 'customer'
                    WHEN c.handoff_at IS NOT NULL AND k >= 6 THEN 'agent'
                    ELSE 'assistant' END)::message_sender,
              'text', 'Message ' || k,
              (CASE WHEN k % 2 = 1 THEN 'received' ELSE 'read' END)::message_status, 0,
              CASE WHEN k % 2 = 0 AND (c.handoff_at IS NULL OR k < 6) THEN k % 8 <> 0 END,
              CASE WHEN k % 2 = 0 AND (c.handoff_at IS NULL OR k < 6) AND k % 8 <> 0
                   THEN jsonb_build_array(jsonb_build_object(
                        'number', 1, 'item_id', 'item-' || (k % 7), 'cited', true)) END,
              CASE WHEN k % 2 = 0 AND (c.handoff_at IS NULL OR k < 6) THEN 'openai' END,
              CASE WHEN k % 2 = 0 AND (c.handoff_at IS NULL OR k < 6) THEN 'gpt-4o-mini' END,
              CASE WHEN k % 2 = 0 AND (c.handoff_at IS NULL OR k < 6) THEN 900 END,
              CASE WHEN k % 2 = 0 AND (c.handoff_at IS NULL OR k < 6) THEN 120 END,
              c.created_at + make_interval(secs => 30 * (k - 1)),
              c.created_at + make_interval(secs => 30 * (k - 1))
       FROM conversations c, generate_series(1, :messages) AS k
       WHERE c.organisation_id = :org""",
    "ANALYZE customers",
    "ANALYZE conversations",
    "ANALYZE messages",
]

# Every conversation's first message answered from a source: a top question in one of
# the same groups (a gap's question and an answered one then share groups).
ANSWERED_QUESTIONS = """WITH asked AS MATERIALIZED (
       SELECT q.id AS message_id, c.id AS conversation_id, c.assistant_id, c.channel,
              q.created_at, 1 + floor(:groups * power(random(), 3))::int AS n
       FROM conversations c
       JOIN messages q ON q.conversation_id = c.id AND q.text = 'Message 1'
       WHERE c.organisation_id = :org)
   INSERT INTO knowledge_gap_questions (id, organisation_id, message_id, conversation_id,
                                       assistant_id, channel, cause, group_id, similarity,
                                       embedding, embedding_model, created_at, updated_at)
   SELECT gen_random_uuid(), :org, a.message_id, a.conversation_id, a.assistant_id,
          a.channel, 'grounded', g.id, 1.0, g.centroid, 'bench', a.created_at, a.created_at
   FROM asked a
   JOIN (SELECT id, centroid, row_number() OVER (ORDER BY id) AS n
           FROM knowledge_gap_groups WHERE organisation_id = :org) AS g ON g.n = a.n"""

GAPS = [
    # A made-up vector per group (the outer g makes the subquery run once per row).
    """INSERT INTO knowledge_gap_groups (id, organisation_id, centroid, embedding_model, size,
                                       created_at, updated_at)
       SELECT gen_random_uuid(), :org,
              (SELECT array_agg(random() - 0.5)::vector
                 FROM generate_series(1, 384) WHERE g > 0),
              'bench', 0, now(), now()
       FROM generate_series(1, :groups) AS g""",
    # Each question's group drawn once (materialised: a random() in the join's condition
    # would be drawn again for every pair).
    """WITH asked AS MATERIALIZED (
           SELECT q.id AS message_id, c.id AS conversation_id, c.assistant_id, c.channel,
                  q.created_at, 1 + floor(:groups * power(random(), 3))::int AS n
           FROM conversations c
           JOIN messages q ON q.conversation_id = c.id AND q.text = 'Message 7'
           WHERE c.organisation_id = :org AND c.handoff_at IS NULL)
       INSERT INTO knowledge_gap_questions (id, organisation_id, message_id, conversation_id,
                                           assistant_id, channel, cause, group_id, similarity,
                                           embedding, embedding_model, created_at, updated_at)
       SELECT gen_random_uuid(), :org, a.message_id, a.conversation_id, a.assistant_id,
              a.channel, 'fallback', g.id, 1.0, g.centroid, 'bench', a.created_at, a.created_at
       FROM asked a
       JOIN (SELECT id, centroid, row_number() OVER (ORDER BY id) AS n
               FROM knowledge_gap_groups WHERE organisation_id = :org) AS g ON g.n = a.n""",
    ANSWERED_QUESTIONS,
    "ANALYZE knowledge_gap_groups",
    # What autovacuum soon does after inserts: the visibility map an index-only scan needs,
    # and the statistics of the daily counts the trigger on the questions wrote.
    "VACUUM ANALYZE knowledge_gap_questions",
    "VACUUM ANALYZE knowledge_gap_days",
]
