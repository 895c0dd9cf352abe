-- The board of a tenant with 50,000 tasks costs what a small one does: the
-- count of each column is kept in task_counts (updated in the transaction
-- that adds, moves or deletes a task: see src/workspace/tasks.rs; no
-- trigger, which Citus would not carry to a worker), and the cards
-- come from an index in the board's own order, a column at a time.
CREATE TABLE task_counts (
    status text PRIMARY KEY CHECK (status IN ('todo', 'doing', 'done')),
    n      bigint NOT NULL CHECK (n >= 0)
);

INSERT INTO task_counts (status, n)
SELECT s.status, (SELECT count(*) FROM tasks t WHERE t.status = s.status)
  FROM (VALUES ('todo'), ('doing'), ('done')) AS s (status);

CREATE INDEX tasks_column_idx ON tasks (status, created_at DESC, id DESC);

DROP INDEX tasks_board_idx;
