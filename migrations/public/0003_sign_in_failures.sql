-- Failed sign-ins per (site, account, client address), shared by every
-- instance: guessing is slowed by growing delays for that pair only, so no
-- one can lock another person out (see web/throttle.rs).
CREATE TABLE sign_in_failures (
    -- 'control-panel', or 'tenant-<id>' for a tenant's workspace.
    site     text NOT NULL,
    -- The email as typed, trimmed and lower-cased (known or not).
    account  text NOT NULL,
    address  text NOT NULL,
    failures integer NOT NULL,
    last_at  timestamptz NOT NULL,
    -- Until when further attempts from this address for this account wait.
    retry_at timestamptz,
    PRIMARY KEY (site, account, address)
);

CREATE INDEX sign_in_failures_last_at_idx ON sign_in_failures (last_at);
