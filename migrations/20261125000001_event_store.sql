-- the event store: one physical table, the global log.
--
-- every event has a global position. positions are assigned under the lock on the single
-- event_log_head row, so a transaction can only take position n+1 after the one holding n has
-- committed or rolled back: commit order equals position order, there are no gaps, and a reader
-- that has read up to n never later finds a smaller position committed behind it.
--
-- each event is chained to the previous one by link_hash (formula in domain/src/chain.rs and in
-- ccare_event_link below; the two must stay byte-identical).

create table event_log (
    position       bigint primary key check (position > 0),
    event_id       uuid not null unique,
    aggregate_type text not null,
    aggregate_id   text not null,
    sequence       bigint not null check (sequence >= 1),
    event_type     text not null,
    event_version  text not null,
    -- json, not jsonb: the text is kept verbatim, which the hash chain covers.
    payload        json not null,
    metadata       json not null,
    recorded_at    timestamptz not null,
    link_hash      bytea not null check (octet_length(link_hash) = 32),
    unique (aggregate_type, aggregate_id, sequence)
);

comment on table event_log is 'ccare global event log: one row per event, in commit order';

create table event_log_head (
    singleton boolean primary key default true check (singleton),
    position  bigint not null,
    link_hash bytea not null
);

insert into event_log_head (singleton, position, link_hash)
values (true, 0, decode(repeat('00', 32), 'hex'));

create function ccare_lp(s text) returns bytea
language sql immutable strict parallel safe
as $$ select int4send(octet_length(convert_to(s, 'UTF8'))) || convert_to(s, 'UTF8') $$;

-- parameters are prefixed: `position` is an SQL keyword (position(a in b)) and cannot stand
-- alone as an expression.
create function ccare_event_link(
    p_prev bytea, p_position bigint, p_event_id uuid, p_aggregate_type text, p_aggregate_id text,
    p_sequence bigint, p_event_type text, p_event_version text, p_payload json, p_metadata json,
    p_recorded_at timestamptz
) returns bytea
language sql immutable strict parallel safe
as $$
    select sha256(
        p_prev
        || int8send(p_position)
        || uuid_send(p_event_id)
        || ccare_lp(p_aggregate_type)
        || ccare_lp(p_aggregate_id)
        || int8send(p_sequence)
        || ccare_lp(p_event_type)
        || ccare_lp(p_event_version)
        || ccare_lp(p_payload::text)
        || ccare_lp(p_metadata::text)
        || int8send((extract(epoch from p_recorded_at) * 1000000)::bigint)
    )
$$;

-- postgres-es reads and writes the table named `events`; here it is a view over the log, and
-- an insert through it appends to the log (position, link, notification) like any other append.
create view events as
select aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata
from event_log;

create function events_view_append() returns trigger
language plpgsql
as $$
declare
    head_position bigint;
    head_link     bytea;
    new_position  bigint;
    new_event_id  uuid := gen_random_uuid();
    new_recorded  timestamptz := date_trunc('microseconds', clock_timestamp());
    new_link      bytea;
begin
    select h.position, h.link_hash into head_position, head_link
    from event_log_head h for update;
    new_position := head_position + 1;
    new_link := ccare_event_link(head_link, new_position, new_event_id, new.aggregate_type,
        new.aggregate_id, new.sequence, new.event_type, new.event_version, new.payload,
        new.metadata, new_recorded);
    insert into event_log (position, event_id, aggregate_type, aggregate_id, sequence,
        event_type, event_version, payload, metadata, recorded_at, link_hash)
    values (new_position, new_event_id, new.aggregate_type, new.aggregate_id, new.sequence,
        new.event_type, new.event_version, new.payload, new.metadata, new_recorded, new_link);
    update event_log_head set position = new_position, link_hash = new_link;
    perform pg_notify('ccare_event_log', new_position::text);
    return new;
end
$$;

create trigger events_view_append instead of insert on events
for each row execute function events_view_append();

-- postgres-es snapshots (used only by aggregates configured with snapshotting).
create table snapshots (
    aggregate_type   text not null,
    aggregate_id     text not null,
    last_sequence    bigint not null check (last_sequence >= 0),
    current_snapshot bigint not null check (current_snapshot >= 0),
    payload          json not null,
    primary key (aggregate_type, aggregate_id, last_sequence)
);
