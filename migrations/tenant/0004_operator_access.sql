-- Who from the operator's side (a control-panel super-admin) opened this
-- workspace as one of its users, when, and when that ended: the tenant's
-- admins read it at /audit. The super-admin is kept by email, since
-- nothing here refers to public.
CREATE TABLE operator_access (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    super_admin text NOT NULL,
    user_id     bigint REFERENCES users (id) ON DELETE SET NULL,
    user_name   text NOT NULL,
    user_email  text NOT NULL,
    client_addr text,
    started_at  timestamptz NOT NULL DEFAULT now(),
    -- Impersonated sessions end at this time whatever happens (absolute).
    expires_at  timestamptz NOT NULL,
    ended_at    timestamptz,
    end_reason  text CHECK (end_reason IN ('ended', 'signed_out', 'suspended')),
    CHECK ((ended_at IS NULL) = (end_reason IS NULL))
);

CREATE INDEX operator_access_started_idx ON operator_access (started_at DESC);
