-- The tenancy core's catalogue in public: tenants, their domains, and the
-- notification that keeps every instance's registry fresh. Applied after
-- the application's own public migrations: an application that created
-- these tables itself (with columns of its own, as Tenantry's first public
-- migration did) keeps them, and this adds only what is missing.
CREATE TABLE IF NOT EXISTS public.tenants (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug           text NOT NULL UNIQUE CHECK (slug ~ '^[a-z][a-z0-9-]{1,30}[a-z0-9]$'),
    schema_name    text NOT NULL UNIQUE
                   CHECK (schema_name ~ '^t_[a-z][a-z0-9_]{1,30}[a-z0-9]$'),
    status         text NOT NULL DEFAULT 'active'
                   CHECK (status IN ('active', 'suspended', 'deleting')),
    -- How many tenant migrations the schema has applied (see migrate.rs).
    schema_version bigint NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS tenants_schema_version_idx ON public.tenants (schema_version);

CREATE TABLE IF NOT EXISTS public.tenant_domains (
    domain     text PRIMARY KEY CHECK (domain = lower(domain) AND char_length(domain) <= 253),
    tenant_id  bigint NOT NULL REFERENCES public.tenants (id) ON DELETE CASCADE,
    is_default boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS tenant_domains_tenant_idx ON public.tenant_domains (tenant_id);
CREATE UNIQUE INDEX IF NOT EXISTS tenant_domains_one_default
    ON public.tenant_domains (tenant_id) WHERE is_default;

-- Every committed change tells every running instance which tenant to
-- reload. NOTIFY is transactional, and one payload is sent once per
-- transaction however many triggers send it.
CREATE OR REPLACE FUNCTION public.tenantry_notify_catalogue() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'tenants' THEN
        PERFORM pg_notify('tenantry_catalogue', COALESCE(NEW.id, OLD.id)::text);
    ELSE
        PERFORM pg_notify('tenantry_catalogue', COALESCE(NEW.tenant_id, OLD.tenant_id)::text);
    END IF;
    RETURN NULL;
END
$$;

-- The core's columns only; an application adds a trigger for its own.
CREATE OR REPLACE TRIGGER tenants_core_notify
    AFTER INSERT OR DELETE OR UPDATE OF slug, status ON public.tenants
    FOR EACH ROW EXECUTE FUNCTION public.tenantry_notify_catalogue();

CREATE OR REPLACE TRIGGER tenant_domains_notify
    AFTER INSERT OR UPDATE OR DELETE ON public.tenant_domains
    FOR EACH ROW EXECUTE FUNCTION public.tenantry_notify_catalogue();
