-- Spare tenant schemas (see src/tenancy/spares.rs): made and migrated ahead
-- of time, so that provisioning renames one instead of creating a schema and
-- running every tenant migration. The schema of row `id` is
-- `tenantry_spare_<id>`; `migrations` names the set it was migrated with,
-- and only a build with the same set takes it.
CREATE TABLE IF NOT EXISTS public.tenant_spares (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    migrations text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS tenant_spares_migrations_idx ON public.tenant_spares (migrations, id);
