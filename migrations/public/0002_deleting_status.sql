-- A tenant being deleted is first marked 'deleting' (and so taken out of
-- routing on every instance) before its schema is dropped.
ALTER TABLE tenants DROP CONSTRAINT tenants_status_check;
ALTER TABLE tenants ADD CONSTRAINT tenants_status_check
    CHECK (status IN ('active', 'suspended', 'deleting'));
