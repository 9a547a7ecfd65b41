-- the durable inbox of the whatsapp bridge (adapters::inbox): every webhook delivery whose
-- x-hub-signature-256 verified, stored before meta is answered 200. meta retries until it gets a
-- 2xx (and sometimes sends a delivery again after one), so once the row is committed nothing is
-- lost, whatever happens to the process; the bridge's worker processes the rows afterwards.
--
-- a redelivery is stored as a row of its own: the inbox is the record of what meta sent. the
-- worker acts on a message only in the delivery that carried it first (whatsapp_seen_messages).

create table whatsapp_inbox (
    id           bigserial primary key,
    received_at  timestamptz not null,
    -- the body exactly as received: the signature holds only for these bytes (json parsed and
    -- written again differs), and a delivery that failed is replayed from them.
    body         bytea not null,
    -- the wamids of the inbound messages in it, in order; empty for status updates only (their
    -- id is that of our own message, shared by each of its updates).
    message_ids  text[] not null default '{}',
    -- set once the worker has processed the delivery; null: still to do.
    processed_at timestamptz,
    -- failed processing attempts so far, and the reason of the last one.
    attempts     integer not null default 0 check (attempts >= 0),
    last_error   text
);

comment on table whatsapp_inbox is 'ccare whatsapp bridge: webhook deliveries as received (signed bytes), stored before the 200, processed by the bridge worker';

-- the worker's queue: unprocessed deliveries in order of reception.
create index whatsapp_inbox_unprocessed on whatsapp_inbox (id) where processed_at is null;

-- every inbound message id (wamid) ever stored, with the delivery that carried it first, so a
-- redelivery is recognised after a restart too, not only within a time-limited lock.
create table whatsapp_seen_messages (
    -- compared bytewise: wamids are opaque ascii, and equality is all that is asked of them.
    message_id    text collate "C" primary key,
    inbox_id      bigint not null references whatsapp_inbox (id),
    first_seen_at timestamptz not null
);

comment on table whatsapp_seen_messages is 'ccare whatsapp bridge: inbound message ids already stored, for deduplicating meta''s redeliveries';
