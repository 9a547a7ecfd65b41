//! Integration tests of the projector runner and read models against a real PostgreSQL.
