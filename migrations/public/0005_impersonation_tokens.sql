-- One-time links with which a super-admin opens a tenant's workspace as one
-- of its users (src/control_panel/impersonate.rs). Only the SHA-256 of the
-- token is kept; a token is bound to one tenant and one user, lasts a
-- minute and is redeemed at most once (src/workspace/impersonation.rs).
CREATE TABLE impersonation_tokens (
    token_hash        bytea PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    tenant_id         bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- A user of that tenant's schema (no foreign key across schemas).
    user_id           bigint NOT NULL,
    super_admin_id    bigint NOT NULL REFERENCES super_admins (id) ON DELETE CASCADE,
    super_admin_email text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz NOT NULL,
    used_at           timestamptz
);

CREATE INDEX impersonation_tokens_tenant_idx ON impersonation_tokens (tenant_id);
CREATE INDEX impersonation_tokens_expires_idx ON impersonation_tokens (expires_at);
