-- the audited writer's bookkeeping (adapters::writer): one row per write command into the ACDB.
--
-- the truth is in the event log (AcdbWrite events: WriteRequested, WriteApplied, WriteFailed);
-- this table is their working copy, always written in the same transaction as those events, plus
-- the writer's own progress mark ('applying': the change may have reached the ACDB).
--
-- requested -> applying -> applied | failed. a process that dies while a write is 'applying' leaves
-- it so; the next start reads the ACDB and confirms it (applied) or fails it, never applying it twice.

create table acdb_writes (
    command_id   uuid primary key,
    table_name   text not null,
    action       text not null check (action in ('create', 'update', 'delete')),
    -- the row key's display form: known from the start for updates, deletes and creates of tables
    -- whose key the request gives; for AutoNumber creates, set once the ACDB has assigned it.
    row_key      text,
    -- domain::write::TableWrite as json (table, action, key, values).
    write        jsonb not null,
    -- the envelope of the command (actor, channel, correlation), as the event metadata map.
    envelope     jsonb not null,
    -- the mutation (event_log position of the change) this write undoes, for reverts.
    reverts      bigint,
    status       text not null default 'requested'
                 check (status in ('requested', 'applying', 'applied', 'failed')),
    -- whether the change's own event (CustomerUpdated, ...) is in the log, emitted by the writer or
    -- claimed by the change capture when it saw the change first.
    captured     boolean not null default false,
    -- AutoNumber creates: the largest key captured when the write began (the new key is above it).
    key_floor    bigint,
    reason       text,
    -- applied: the event_log position of the row's change event (the mutation).
    position     bigint,
    requested_at timestamptz not null default now(),
    finished_at  timestamptz
);

comment on table acdb_writes is 'ccare audited writer: write commands into the ACDB and their outcome (working copy of the AcdbWrite events)';

create index acdb_writes_open on acdb_writes (requested_at) where status in ('requested', 'applying');
create index acdb_writes_uncaptured on acdb_writes (table_name, row_key) where not captured and status in ('applying', 'applied');
