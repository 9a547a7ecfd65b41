-- the projector runner's registry and the stable read-model schema.
--
-- every projection (read model) keeps its tables in a generation schema `rm_<name>_<n>`, created
-- by the runner. readers never name a generation: the schema `read_model` holds one view per
-- table, named like the table, pointing at the live generation. a rebuild fills generation n+1
-- from position 0 while n keeps serving, then swaps the views and the registry's live
-- generation in one transaction and drops n.
--
-- a projection's checkpoint moves in the same transaction as the rows its events produced, so a
-- crash never applies an event twice or skips one. appliers of one projection are serialised by
-- a transaction-level advisory lock (see projections/src/registry.rs), which the swap takes too.

create schema read_model;

-- trigram indexes let the read models' case-insensitive substring searches (customer search)
-- use an index. pg_trgm ships with PostgreSQL and is a trusted extension.
create extension if not exists pg_trgm;

comment on schema read_model is
    'ccare read models: one view per read-model table, always pointing at the live generation';

create table projection_registry (
    -- permanent: the projection's name in code, and the stem of its generation schemas.
    name            text primary key check (name ~ '^[a-z][a-z0-9_]{0,39}$'),
    -- the generation whose schema (rm_<name>_<n>) the read_model views point at.
    live_generation integer not null check (live_generation >= 1),
    -- the checkpoint of the live generation: every event at or below it has been applied.
    position        bigint not null default 0 check (position >= 0),
    -- 'live', or 'rebuilding' while a rebuild fills the next generation (see projection_rebuilds).
    status          text not null default 'live' check (status in ('live', 'rebuilding')),
    -- when the checkpoint last moved.
    last_applied_at timestamptz,
    -- the last failure to apply a batch, cleared by the next success. names no row contents.
    last_error      text,
    last_error_at   timestamptz,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now()
);

comment on table projection_registry is
    'ccare projector runner: per read model, the live generation and its checkpoint in event_log';

-- at most one rebuild per projection: the generation being filled and its own checkpoint.
-- a row left behind by a rebuild that died is discarded by the next rebuild.
create table projection_rebuilds (
    name       text primary key references projection_registry (name) on delete cascade,
    generation integer not null check (generation >= 2),
    position   bigint not null default 0 check (position >= 0),
    started_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

comment on table projection_rebuilds is
    'ccare projector runner: the generation a rebuild is filling, and its checkpoint';

-- which projection provides each view of read_model, so two read models cannot claim one name.
create table projection_views (
    view_name  text primary key,
    projection text not null references projection_registry (name) on delete cascade
);

comment on table projection_views is
    'ccare projector runner: the projection that provides each view in schema read_model';
