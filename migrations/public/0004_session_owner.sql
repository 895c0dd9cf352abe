-- The session store writes the owner of every session, on either site, to
-- a column named for what it is (see src/tenancy/sessions.rs).
ALTER TABLE cp_sessions RENAME COLUMN user_id TO owner_id;
ALTER INDEX cp_sessions_user_idx RENAME TO cp_sessions_owner_idx;
