-- the NATS outbox relay's progress (adapters::nats): per JetStream stream, the position of the
-- last event of the global log whose publication the stream acknowledged. the event log is the
-- outbox: every committed event is published, in position order, from here on.
create table nats_relay (
    stream     text primary key,
    position   bigint not null check (position >= 0),
    updated_at timestamptz not null default now()
);
