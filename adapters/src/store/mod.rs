//! The event store over PostgreSQL: the global log (see migrations/…_event_store.sql).
