-- change capture state (adapters::cdc): what the capture knows of each ACDB table and row.
--
-- every write here happens in the same transaction as the events it accounts for, so the
-- capture's memory and the event log never disagree: a capture killed at any point resumes
-- from the last commit and emits no duplicate.

create table cdc_table_state (
    -- the table's name as spelled in ccare's catalogue (domain::catalog::CAPTURED_TABLES).
    table_name          text primary key,
    -- snapshot: the initial import is not finished; polling: following changes;
    -- paused: the safety stop held back an implausible change (see paused_reason).
    phase               text not null default 'snapshot'
                        check (phase in ('snapshot', 'polling', 'paused')),
    -- the key (domain::catalog::RowKey as json) of the last row whose chunk the snapshot committed.
    snapshot_checkpoint jsonb,
    -- source rows the snapshot has read so far (progress after a resume).
    snapshot_rows       bigint not null default 0 check (snapshot_rows >= 0),
    snapshot_started_at timestamptz,
    snapshot_done_at    timestamptz,
    -- append-only tables: the largest watermark value captured (domain::catalog::KeyPart as json).
    watermark           jsonb,
    -- the column names the source reported last time, to detect schema drift.
    known_columns       jsonb not null default '[]',
    -- the last schema change seen ("columns added: …; columns removed: …").
    schema_note         text,
    -- rows currently live in cdc_row_state for this table.
    live_rows           bigint not null default 0 check (live_rows >= 0),
    last_rows_seen      bigint not null default 0,
    last_events         bigint not null default 0,
    last_rejected       bigint not null default 0,
    total_events        bigint not null default 0,
    last_poll_at        timestamptz,
    last_success_at     timestamptz,
    last_reconciled_at  timestamptz,
    last_error          text,
    paused_reason       text,
    -- one-shot operator approval: the next cycle emits despite the safety stop, then clears it.
    confirmed           boolean not null default false,
    updated_at          timestamptz not null default now()
);

comment on table cdc_table_state is 'ccare change capture: per captured ACDB table, phase, checkpoint, watermark, counters';

-- the capture's memory of each source row: the hash and aggregate sequence of the last event
-- emitted for it. live = false after a delete (the sequence is kept: a re-created row continues it).
create table cdc_row_state (
    table_name text not null,
    -- domain::catalog::RowKey display form = the aggregate id of the row's events.
    row_key    text not null,
    row_hash   bytea not null check (octet_length(row_hash) = 32),
    sequence   bigint not null check (sequence >= 1),
    live       boolean not null,
    primary key (table_name, row_key)
);

comment on table cdc_row_state is 'ccare change capture: per captured row, the last captured hash and event sequence';

-- source rows that cannot become events (no key, malformed key, duplicate key, ...).
-- row_ref is the row key when there is one, else "#<hash prefix>" of the row's content, so a
-- re-poll of the same bad row updates its record instead of adding one.
create table cdc_rejected_rows (
    table_name text not null,
    row_ref    text not null,
    reason     text not null,
    detail     text not null,
    -- the row's position in the scan that last saw it (helps find a keyless row in Access).
    ordinal    bigint not null,
    first_seen timestamptz not null,
    last_seen  timestamptz not null,
    primary key (table_name, row_ref, reason)
);

comment on table cdc_rejected_rows is 'ccare change capture: ACDB rows left out of the capture, with the reason';

-- reconciliation buckets: the first 16 bits of sha256(row key), masked to 2^k buckets. the same
-- formula runs in rust (adapters::cdc::reconcile::key_bucket); the two must agree.
create function ccare_cdc_key_bucket(row_key text, mask integer) returns integer
language sql immutable strict parallel safe
as $$ select (('x' || left(encode(sha256(convert_to(row_key, 'UTF8')), 'hex'), 4))::bit(16)::integer) & mask $$;

-- the first 8 bytes of a row hash as a signed big-endian integer (summed per bucket).
create function ccare_cdc_hash_prefix(row_hash bytea) returns bigint
language sql immutable strict parallel safe
as $$ select ('x' || encode(substring(row_hash from 1 for 8), 'hex'))::bit(64)::bigint $$;
