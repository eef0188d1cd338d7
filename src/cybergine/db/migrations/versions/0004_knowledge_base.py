"""Knowledge base: collections, documents and Q&A pairs, original files, chunks with a
tsvector (GIN) and an embedding (HNSW, cosine), and the corpus statistics and document
frequencies BM25 reads.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 01:22:06.524510
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects import postgresql

from cybergine.db.migrate import execute_script

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# kb_index_stats holds, per organisation, the chunk count and total chunk length (distinct
# lexemes) that BM25 needs on every query. Statement-level triggers with transition tables
# keep it exact for every insert, update and delete of chunks, including the deletes
# cascaded from items, collections and organisations.
STATS_TRIGGERS = """
CREATE FUNCTION kb_index_stats_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  organisation uuid;
BEGIN
  -- One writer of an organisation's statistics at a time (until commit): concurrent
  -- indexing jobs would otherwise lock lexicon rows in different orders and deadlock.
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    FOR organisation IN SELECT DISTINCT organisation_id FROM old_rows ORDER BY 1 LOOP
      PERFORM pg_advisory_xact_lock(hashtext('kb_index_stats'), hashtext(organisation::text));
    END LOOP;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    FOR organisation IN SELECT DISTINCT organisation_id FROM new_rows ORDER BY 1 LOOP
      PERFORM pg_advisory_xact_lock(hashtext('kb_index_stats'), hashtext(organisation::text));
    END LOOP;
  END IF;

  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    UPDATE kb_index_stats s
       SET chunk_count = s.chunk_count - d.n, total_length = s.total_length - d.len,
           updated_at = now()
      FROM (SELECT organisation_id, count(*) AS n, sum(length(tsv)) AS len
              FROM old_rows GROUP BY organisation_id) d
     WHERE s.organisation_id = d.organisation_id;
    UPDATE kb_lexicon l
       SET df = l.df - d.n
      FROM (SELECT o.organisation_id, u.lexeme, count(*) AS n
              FROM old_rows o, unnest(o.tsv) AS u(lexeme, positions, weights)
             GROUP BY 1, 2) d
     WHERE l.organisation_id = d.organisation_id AND l.lexeme = d.lexeme;
    DELETE FROM kb_lexicon l
     WHERE l.df <= 0 AND l.organisation_id IN (SELECT organisation_id FROM old_rows);
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO kb_index_stats (id, organisation_id, chunk_count, total_length)
    SELECT gen_random_uuid(), organisation_id, count(*), sum(length(tsv))
      FROM new_rows GROUP BY organisation_id
    ON CONFLICT (organisation_id) DO UPDATE
       SET chunk_count = kb_index_stats.chunk_count + EXCLUDED.chunk_count,
           total_length = kb_index_stats.total_length + EXCLUDED.total_length,
           updated_at = now();
    INSERT INTO kb_lexicon (id, organisation_id, lexeme, df)
    SELECT gen_random_uuid(), n.organisation_id, u.lexeme, count(*)
      FROM new_rows n, unnest(n.tsv) AS u(lexeme, positions, weights)
     GROUP BY 2, 3
    ON CONFLICT (organisation_id, lexeme) DO UPDATE SET df = kb_lexicon.df + EXCLUDED.df;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER kb_chunks_stats_insert AFTER INSERT ON kb_chunks
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION kb_index_stats_apply();
CREATE TRIGGER kb_chunks_stats_update AFTER UPDATE ON kb_chunks
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION kb_index_stats_apply();
CREATE TRIGGER kb_chunks_stats_delete AFTER DELETE ON kb_chunks
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION kb_index_stats_apply();
"""

DROP_STATS_TRIGGERS = """
DROP TRIGGER IF EXISTS kb_chunks_stats_insert ON kb_chunks;
DROP TRIGGER IF EXISTS kb_chunks_stats_update ON kb_chunks;
DROP TRIGGER IF EXISTS kb_chunks_stats_delete ON kb_chunks;
DROP FUNCTION IF EXISTS kb_index_stats_apply();
"""


def upgrade() -> None:
    op.create_table(
        "kb_collections",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("organisation_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_kb_collections_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_collections")),
        sa.UniqueConstraint(
            "organisation_id", "name", name=op.f("uq_kb_collections_organisation_id_name")
        ),
    )
    op.create_index(
        op.f("ix_kb_collections_organisation_id"),
        "kb_collections",
        ["organisation_id"],
        unique=False,
    )
    op.create_table(
        "kb_index_stats",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("organisation_id", sa.UUID(), nullable=False),
        sa.Column("chunk_count", sa.BigInteger(), nullable=False),
        sa.Column("total_length", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_kb_index_stats_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_index_stats")),
        sa.UniqueConstraint("organisation_id", name=op.f("uq_kb_index_stats_organisation_id")),
    )
    op.create_index(
        op.f("ix_kb_index_stats_organisation_id"),
        "kb_index_stats",
        ["organisation_id"],
        unique=False,
    )
    op.create_table(
        "kb_lexicon",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("organisation_id", sa.UUID(), nullable=False),
        sa.Column("lexeme", sa.Text(), nullable=False),
        sa.Column("df", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_kb_lexicon_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_lexicon")),
        sa.UniqueConstraint(
            "organisation_id", "lexeme", name=op.f("uq_kb_lexicon_organisation_id_lexeme")
        ),
    )
    op.create_index(
        op.f("ix_kb_lexicon_organisation_id"), "kb_lexicon", ["organisation_id"], unique=False
    )
    op.create_table(
        "kb_items",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("organisation_id", sa.UUID(), nullable=False),
        sa.Column("collection_id", sa.UUID(), nullable=False),
        sa.Column("kind", sa.Enum("document", "qa", name="kb_item_kind"), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("question", sa.Text(), nullable=True),
        sa.Column(
            "alternatives", sa.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False
        ),
        sa.Column("content_type", sa.String(length=20), nullable=True),
        sa.Column("page_count", sa.Integer(), nullable=True),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum("pending", "processing", "ready", "failed", name="kb_item_status"),
            nullable=False,
        ),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["kb_collections.id"],
            name=op.f("fk_kb_items_collection_id_kb_collections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_kb_items_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_items")),
        sa.UniqueConstraint(
            "organisation_id", "external_id", name=op.f("uq_kb_items_organisation_id_external_id")
        ),
    )
    op.create_index(op.f("ix_kb_items_collection_id"), "kb_items", ["collection_id"], unique=False)
    op.create_index(
        op.f("ix_kb_items_organisation_id"), "kb_items", ["organisation_id"], unique=False
    )
    op.create_index(
        op.f("ix_kb_items_organisation_id_collection_id_status"),
        "kb_items",
        ["organisation_id", "collection_id", "status"],
        unique=False,
    )
    op.create_table(
        "kb_chunks",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("organisation_id", sa.UUID(), nullable=False),
        sa.Column("item_id", sa.UUID(), nullable=False),
        sa.Column("collection_id", sa.UUID(), nullable=False),
        sa.Column("kind", sa.Enum("passage", "question", name="kb_chunk_kind"), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column(
            "tsv",
            postgresql.TSVECTOR(),
            sa.Computed("to_tsvector('english', text)", persisted=True),
            nullable=False,
        ),
        sa.Column("embedding", Vector(384), nullable=True),
        sa.Column("embedding_model", sa.String(length=100), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["kb_collections.id"],
            name=op.f("fk_kb_chunks_collection_id_kb_collections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["kb_items.id"],
            name=op.f("fk_kb_chunks_item_id_kb_items"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_kb_chunks_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_chunks")),
    )
    op.create_index(
        op.f("ix_kb_chunks_embedding"),
        "kb_chunks",
        ["embedding"],
        unique=False,
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"embedding": "vector_cosine_ops"},
    )
    op.create_index(op.f("ix_kb_chunks_item_id"), "kb_chunks", ["item_id"], unique=False)
    op.create_index(
        op.f("ix_kb_chunks_organisation_id"), "kb_chunks", ["organisation_id"], unique=False
    )
    op.create_index(
        op.f("ix_kb_chunks_organisation_id_collection_id"),
        "kb_chunks",
        ["organisation_id", "collection_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_kb_chunks_tsv"), "kb_chunks", ["tsv"], unique=False, postgresql_using="gin"
    )
    op.create_table(
        "kb_files",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("organisation_id", sa.UUID(), nullable=False),
        sa.Column("item_id", sa.UUID(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("declared_type", sa.String(length=100), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["kb_items.id"],
            name=op.f("fk_kb_files_item_id_kb_items"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_kb_files_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_files")),
        sa.UniqueConstraint("item_id", name=op.f("uq_kb_files_item_id")),
    )
    op.create_index(
        op.f("ix_kb_files_organisation_id"), "kb_files", ["organisation_id"], unique=False
    )

    execute_script(STATS_TRIGGERS)


def downgrade() -> None:
    execute_script(DROP_STATS_TRIGGERS)
    op.drop_index(op.f("ix_kb_files_organisation_id"), table_name="kb_files")
    op.drop_table("kb_files")
    op.drop_index(op.f("ix_kb_chunks_tsv"), table_name="kb_chunks", postgresql_using="gin")
    op.drop_index(op.f("ix_kb_chunks_organisation_id_collection_id"), table_name="kb_chunks")
    op.drop_index(op.f("ix_kb_chunks_organisation_id"), table_name="kb_chunks")
    op.drop_index(op.f("ix_kb_chunks_item_id"), table_name="kb_chunks")
    op.drop_index(
        op.f("ix_kb_chunks_embedding"),
        table_name="kb_chunks",
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"embedding": "vector_cosine_ops"},
    )
    op.drop_table("kb_chunks")
    op.drop_index(op.f("ix_kb_items_organisation_id_collection_id_status"), table_name="kb_items")
    op.drop_index(op.f("ix_kb_items_organisation_id"), table_name="kb_items")
    op.drop_index(op.f("ix_kb_items_collection_id"), table_name="kb_items")
    op.drop_table("kb_items")
    op.drop_index(op.f("ix_kb_lexicon_organisation_id"), table_name="kb_lexicon")
    op.drop_table("kb_lexicon")
    op.drop_index(op.f("ix_kb_index_stats_organisation_id"), table_name="kb_index_stats")
    op.drop_table("kb_index_stats")
    op.drop_index(op.f("ix_kb_collections_organisation_id"), table_name="kb_collections")
    op.drop_table("kb_collections")
    for name in ("kb_chunk_kind", "kb_item_status", "kb_item_kind"):
        sa.Enum(name=name).drop(op.get_bind(), checkfirst=True)
