-- Usage at a glance (src/usage/): figures the control panel shows without
-- computing anything over the tenants' schemas on page load.
--
-- Requests are counted in memory as they pass and added here by a job about
-- once a minute (src/usage/collect.rs), never with a query per request.

-- Requests to each tenant's site, a row per tenant per UTC day. No foreign
-- key: the history outlives a deleted tenant (pages join public.tenants).
CREATE TABLE usage_daily (
    tenant_id     bigint NOT NULL,
    day           date NOT NULL,
    requests      bigint NOT NULL CHECK (requests >= 0),
    last_activity timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, day)
);

-- The busiest tenants of the last days.
CREATE INDEX usage_daily_day_idx ON usage_daily (day);

-- Requests per site kind per UTC day: the dashboard's totals in a few rows,
-- however many tenants there are.
CREATE TABLE usage_site_daily (
    site     text NOT NULL CHECK (site IN ('tenant', 'control_panel')),
    day      date NOT NULL,
    requests bigint NOT NULL CHECK (requests >= 0),
    PRIMARY KEY (site, day)
);

-- The latest figures of each tenant, the tenant list's columns: its schema's
-- size, its tasks and active sessions (refreshed by a job, a bounded batch
-- of the stalest tenants at a time) and its last request (by the flush).
-- NULL figures have not been measured yet. The user count stays in
-- public.tenants.user_count, which the tenant app keeps exact.
CREATE TABLE tenant_usage (
    tenant_id       bigint PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    size_bytes      bigint,
    tasks           bigint,
    active_sessions bigint,
    last_activity   timestamptz,
    -- When the job last measured this tenant (NULL: never).
    refreshed_at    timestamptz
);

-- The refresh job's "stalest first". No index per figure: the flush moves
-- last_activity of every busy tenant each minute, and those updates stay
-- cheap (HOT) without one; sorting the list by a figure sorts at most one
-- row per tenant, milliseconds for 10,000.
CREATE INDEX tenant_usage_refreshed_idx ON tenant_usage (refreshed_at NULLS FIRST);

-- What happened to tenants when, for the dashboard's tenants per week:
-- written by a trigger on public.tenants, so a tenant created, suspended
-- or deleted from the panel, the CLI or an import is counted alike, and a
-- deleted tenant's creation still counts in its week.
CREATE TABLE tenant_events (
    id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at    timestamptz NOT NULL DEFAULT now(),
    slug  text NOT NULL,
    event text NOT NULL CHECK (event IN ('created', 'suspended', 'reactivated', 'deleted'))
);

CREATE INDEX tenant_events_at_idx ON tenant_events (at);

CREATE FUNCTION tenantry_tenant_event() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO public.tenant_events (slug, event) VALUES (NEW.slug, 'created');
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO public.tenant_events (slug, event) VALUES (OLD.slug, 'deleted');
    ELSIF NEW.status = 'suspended' AND OLD.status = 'active' THEN
        INSERT INTO public.tenant_events (slug, event) VALUES (NEW.slug, 'suspended');
    ELSIF NEW.status = 'active' AND OLD.status = 'suspended' THEN
        INSERT INTO public.tenant_events (slug, event) VALUES (NEW.slug, 'reactivated');
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER tenants_events
    AFTER INSERT OR DELETE OR UPDATE OF status ON tenants
    FOR EACH ROW EXECUTE FUNCTION tenantry_tenant_event();

-- The history so far: the tenants there are, and from the audit log what
-- the panel did before this migration (tenants it created and deleted
-- since included).
INSERT INTO tenant_events (at, slug, event)
SELECT created_at, slug, 'created' FROM tenants
UNION ALL
SELECT a.at, a.tenant_slug, 'created' FROM audit_log a
 WHERE a.action = 'tenant_create' AND a.tenant_slug IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM tenants t WHERE t.slug = a.tenant_slug)
UNION ALL
SELECT a.at, a.tenant_slug,
       CASE a.action WHEN 'tenant_suspend' THEN 'suspended'
                     WHEN 'tenant_reactivate' THEN 'reactivated'
                     ELSE 'deleted' END
  FROM audit_log a
 WHERE a.action IN ('tenant_suspend', 'tenant_reactivate', 'tenant_delete')
   AND a.tenant_slug IS NOT NULL
 ORDER BY 1;
