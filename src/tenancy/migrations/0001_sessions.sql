-- The tenancy core's own table in every tenant schema: the sessions of the
-- tenant's site, each with its owner's id (an account of the application's,
-- whichever it is: no foreign key, the core knows no application table).
-- The core's migrations keep their own ledger (_tenantry_core_migrations)
-- and run before the application's.
CREATE TABLE tenantry_sessions (
    id          text PRIMARY KEY,
    data        jsonb NOT NULL,
    expiry_date timestamptz NOT NULL,
    owner_id    bigint
);

CREATE INDEX tenantry_sessions_expiry_idx ON tenantry_sessions (expiry_date);
CREATE INDEX tenantry_sessions_owner_idx ON tenantry_sessions (owner_id);
