-- the outbox of the whatsapp bridge (adapters::outbox): replies to send through the cloud api,
-- tickets and comments to forward to ugridplan, notices to the operations team. the worker
-- queues an item in the pass that decided it; senders of their own send it, with retries and
-- back-off, so an outage of either service delays items but loses none, and a restart resumes.

create table bridge_outbox (
    id          bigserial primary key,
    -- 'whatsapp' or 'ugridplan': the sender that takes it.
    channel     text collate "C" not null check (channel in ('whatsapp', 'ugridplan')),
    -- names the item for good: queueing the same key again changes nothing.
    key         text collate "C" not null unique,
    -- a phone number (e.164) or the ticket a ugridplan call is about. one recipient's items go
    -- out in order, one at a time.
    recipient   text collate "C" not null,
    -- what the sender needs, in its own json shape.
    payload     jsonb not null,
    queued_at   timestamptz not null default now(),
    -- the earliest the next attempt may be made (moved by back-off and the rate limit).
    not_before  timestamptz not null,
    attempts    integer not null default 0 check (attempts >= 0),
    last_error  text,
    -- set when it went out (outcome: the far side's id) or was given up (outcome null,
    -- last_error the reason).
    done_at     timestamptz,
    gave_up     boolean not null default false,
    outcome     text
);

comment on table bridge_outbox is 'ccare whatsapp bridge: messages and ugridplan calls to make, kept until made; one recipient''s items in order';

-- the senders' queue: unfinished items by recipient in order.
create index bridge_outbox_pending on bridge_outbox (channel, recipient, id) where done_at is null;
