-- Example schema of the chat application described in the original migration design.
-- The seed preset (seed.toml) maps these six tables; the demo app and tests create them.
CREATE TABLE IF NOT EXISTS conversations (
    id          TEXT PRIMARY KEY,                  -- uuid4 text
    title       TEXT,                              -- NULL -> "Untitled Conversation"
    user_id     TEXT,                              -- NULL -> "unknown"
    created_at  DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,   -- 'YYYY-MM-DD HH:MM:SS' UTC
    updated_at  DATETIME,                          -- ISO 8601 text, maybe with zone
    is_active   BOOLEAN NOT NULL DEFAULT 1
);

CREATE TABLE IF NOT EXISTS messages (
    id               TEXT PRIMARY KEY,
    conversation_id  TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role             TEXT NOT NULL,                -- user | assistant | system | tool
    content          TEXT,
    created_at       DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    tool_calls       JSON,                         -- NULL -> "{}"
    extra_data       JSON,
    token_count      INTEGER
);
CREATE INDEX IF NOT EXISTS messages_conversation ON messages(conversation_id);

CREATE TABLE IF NOT EXISTS documents (
    id           TEXT PRIMARY KEY,
    title        TEXT,
    content      TEXT,
    source_url   TEXT,
    doc_type     TEXT,
    file_size    INTEGER,
    created_at   DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at   DATETIME,
    extra_data   JSON
);

CREATE TABLE IF NOT EXISTS document_chunks (
    id           TEXT PRIMARY KEY,
    document_id  TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    chunk_index  INTEGER NOT NULL,
    content      TEXT NOT NULL,
    token_count  INTEGER,
    embedding    BLOB,                             -- little-endian float32 vector
    created_at   DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (document_id, chunk_index)
);

CREATE TABLE IF NOT EXISTS agent_interactions (
    id               INTEGER PRIMARY KEY,          -- rowid alias
    conversation_id  TEXT REFERENCES conversations(id) ON DELETE SET NULL,
    agent_name       TEXT NOT NULL,
    input_text       TEXT,
    output_text      TEXT,
    tool_name        TEXT,
    score            REAL,                         -- 0..1 quality score
    latency_ms       INTEGER,
    success          BOOLEAN,
    created_at       DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    extra_data       JSON
);

CREATE TABLE IF NOT EXISTS multimodal_content (
    id               TEXT PRIMARY KEY,
    conversation_id  TEXT REFERENCES conversations(id) ON DELETE SET NULL,
    content_type     TEXT NOT NULL,                -- image | audio | video | file
    mime_type        TEXT,
    description      TEXT,
    data             BLOB,                         -- raw bytes, stored as a base64 blob property
    file_size        INTEGER,
    created_at       INTEGER NOT NULL              -- unix milliseconds
) WITHOUT ROWID;
