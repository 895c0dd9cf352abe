-- The shared catalogue: tenants with their branding, their domains, the
-- control panel's super-admins and sessions, and the audit log.

CREATE TABLE tenants (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug              text NOT NULL UNIQUE
                      CHECK (slug ~ '^[a-z][a-z0-9-]{1,30}[a-z0-9]$'),
    schema_name       text NOT NULL UNIQUE
                      CHECK (schema_name ~ '^t_[a-z][a-z0-9_]{1,30}[a-z0-9]$'),
    display_name      text NOT NULL CHECK (char_length(display_name) BETWEEN 1 AND 100),
    status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    primary_color     text NOT NULL DEFAULT '#4f46e5' CHECK (primary_color ~ '^#[0-9a-f]{6}$'),
    accent_color      text NOT NULL DEFAULT '#0ea5e9' CHECK (accent_color ~ '^#[0-9a-f]{6}$'),
    theme             text NOT NULL DEFAULT 'light' CHECK (theme IN ('light', 'dark')),
    -- The logo stays out of the registry's catalogue query; only its type and
    -- hash travel, and /brand/logo fetches the bytes (browsers cache by ETag).
    logo              bytea,
    logo_content_type text CHECK (logo_content_type IN ('image/png', 'image/jpeg', 'image/webp')),
    logo_sha256       text,
    -- Bumped on every branding change: the ETag of /theme.css.
    branding_version  bigint NOT NULL DEFAULT 1,
    -- The newest tenant migration applied to this tenant's schema. The schema's
    -- own ledger is the truth; this copy lets a no-op rollout skip every tenant
    -- with one query instead of visiting 10,000 ledgers.
    schema_version    bigint NOT NULL DEFAULT 0,
    user_count        integer NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((logo IS NULL) = (logo_content_type IS NULL))
);

CREATE INDEX tenants_created_at_idx ON tenants (created_at DESC);
CREATE INDEX tenants_schema_version_idx ON tenants (schema_version);

CREATE TABLE tenant_domains (
    domain     text PRIMARY KEY CHECK (domain = lower(domain) AND char_length(domain) <= 253),
    tenant_id  bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    is_default boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX tenant_domains_tenant_idx ON tenant_domains (tenant_id);
CREATE UNIQUE INDEX tenant_domains_one_default ON tenant_domains (tenant_id) WHERE is_default;

CREATE TABLE super_admins (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         text NOT NULL,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz
);

CREATE UNIQUE INDEX super_admins_email_key ON super_admins (lower(email));

CREATE TABLE cp_sessions (
    id          text PRIMARY KEY,
    data        jsonb NOT NULL,
    expiry_date timestamptz NOT NULL,
    user_id     bigint REFERENCES super_admins (id) ON DELETE CASCADE
);

CREATE INDEX cp_sessions_user_idx ON cp_sessions (user_id);

CREATE INDEX cp_sessions_expiry_idx ON cp_sessions (expiry_date);

CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    action      text NOT NULL,
    tenant_slug text,
    detail      text NOT NULL DEFAULT '',
    client_addr text
);

CREATE INDEX audit_log_at_idx ON audit_log (at DESC);

-- Keys shared by every instance (the CSRF token key), made on first start.
CREATE TABLE app_secrets (
    name  text PRIMARY KEY,
    value bytea NOT NULL
);

-- Every committed change to the catalogue tells every running instance which
-- tenant to reload. NOTIFY is transactional: nothing is sent on rollback.
CREATE FUNCTION tenantry_notify_catalogue() RETURNS trigger
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

-- schema_version and user_count are bookkeeping, not part of what the registry
-- serves, so changes to them alone send no notification.
CREATE TRIGGER tenants_notify
    AFTER INSERT OR DELETE OR UPDATE OF slug, display_name, status, primary_color, accent_color,
        theme, logo_content_type, logo_sha256, branding_version
    ON tenants FOR EACH ROW EXECUTE FUNCTION tenantry_notify_catalogue();

CREATE TRIGGER tenant_domains_notify
    AFTER INSERT OR UPDATE OR DELETE ON tenant_domains
    FOR EACH ROW EXECUTE FUNCTION tenantry_notify_catalogue();
