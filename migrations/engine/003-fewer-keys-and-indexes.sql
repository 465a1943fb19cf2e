-- History and jobs lose their foreign keys to workflows. The engine is their only writer and
-- deletes a workflow with them in one statement (queries.ts, deleteWorkflows); the keys checked
-- every history row and job written (a lookup and a lock on the workflow's row, nine a flow) for a
-- guarantee the engine keeps itself. A job's attempts keep theirs: the runner records a failed
-- run without holding its workflow's row, and the cascade is what takes such a row with its job.
-- The installation's token tables keep theirs too: the token vault writes them, not the engine,
-- and their cascade is what clears a held exchange's tokens when retention deletes its workflow.
-- (If exists: a database that applied 004 first has a history table made without one.)
alter table wix_engine.workflow_history drop constraint if exists workflow_history_workflow_id_fkey;
alter table wix_engine.jobs drop constraint jobs_workflow_id_fkey;

-- Every transition gives its row a new entry in each of the table's indexes (updated_at is in
-- them: never a HOT update), so an index is an entry per transition. workflows_state_idx served
-- no list: a list's state filter is `state = any(...)`, which Postgres 15 cannot read in
-- updated_at order from it (it reads workflows_updated_idx and filters). Its one user was
-- retention's search for ended workflows, which gets an index that only a row in a final state
-- enters: once, as it ends, and never while it moves.
drop index wix_engine.workflows_state_idx;
create index workflows_ended_idx on wix_engine.workflows (machine, state, updated_at)
  where snapshot ->> 'status' = 'done';

-- A failure reason within a creation window, newest created first: read in order, where
-- workflows_created_idx read a window's every row to find its few of one reason (a 30-day window
-- at 1M rows: ~5,000 a page). Only a workflow with a failure reason enters it, once, as it fails.
create index workflows_reason_created_idx on wix_engine.workflows (machine, reason, created_at desc, id desc)
  where reason is not null;
