-- Applied to every tenant schema, with search_path set to that schema only.
-- No types of its own (an enum per schema would break the shared statement
-- cache: "cached plan must not change result type"), no references to public.

CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         text NOT NULL CHECK (char_length(email) <= 254),
    display_name  text NOT NULL CHECK (char_length(display_name) BETWEEN 1 AND 100),
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('admin', 'member')),
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE sessions (
    id          text PRIMARY KEY,
    data        jsonb NOT NULL,
    expiry_date timestamptz NOT NULL,
    -- Lets deactivation and a password change end a user's sessions at once.
    user_id     bigint REFERENCES users (id) ON DELETE CASCADE
);

CREATE INDEX sessions_expiry_idx ON sessions (expiry_date);
CREATE INDEX sessions_user_idx ON sessions (user_id);

CREATE TABLE tasks (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title       text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    description text NOT NULL DEFAULT '' CHECK (char_length(description) <= 10000),
    status      text NOT NULL DEFAULT 'todo' CHECK (status IN ('todo', 'doing', 'done')),
    assignee_id bigint REFERENCES users (id) ON DELETE SET NULL,
    due_date    date,
    created_by  bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX tasks_board_idx ON tasks (status, created_at DESC);
