//! PostgreSQL: connection, migrations, and the embedded private cluster.
