-- Sessions now live in the tenancy core's own table, tenantry_sessions
-- (the core's migrations run first). The old table goes; whoever was signed
-- in signs in once more.
DROP TABLE sessions;
