-- writes that one command makes together (a meter and its account): applied in one ACDB
-- transaction, all or none, each still its own audited mutation. group_order is their order
-- within the transaction. null for a write of its own.
alter table acdb_writes add column group_id uuid, add column group_order integer;

create index acdb_writes_group on acdb_writes (group_id) where group_id is not null;
