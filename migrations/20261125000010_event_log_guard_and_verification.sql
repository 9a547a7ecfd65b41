-- the global log is append-only: an update, delete or truncate of event_log is refused. the
-- hash chain still catches changes made by someone who disables this trigger first (a table
-- owner or superuser can); this only stops accidents and ordinary code paths.

create function event_log_refuse_change() returns trigger
language plpgsql
as $$
begin
    raise exception 'event_log is append-only: % is not allowed', tg_op
        using errcode = 'insufficient_privilege',
              hint = 'events are corrected by appending new events, never by editing stored ones';
end
$$;

create trigger event_log_append_only before update or delete on event_log
for each row execute function event_log_refuse_change();

create trigger event_log_no_truncate before truncate on event_log
for each statement execute function event_log_refuse_change();

-- how far the hash chain is known to be intact (adapters::store, `ccare audit verify`,
-- `ccare status`): every verification records the last position it verified from the first
-- event on, with that position's link, so the next one only walks the events appended since;
-- and the first break it found, if any.
create table event_chain_verification (
    singleton         boolean primary key default true check (singleton),
    verified_position bigint not null check (verified_position >= 0),
    verified_link     bytea not null check (octet_length(verified_link) = 32),
    verified_at       timestamptz,
    broken_position   bigint,
    broken_problem    text,
    check ((broken_position is null) = (broken_problem is null))
);

insert into event_chain_verification (singleton, verified_position, verified_link)
values (true, 0, decode(repeat('00', 32), 'hex'));
