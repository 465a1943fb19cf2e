-- A workflow's pending timers live in its own row, which every transition rewrites anyway:
-- setting and cancelling one costs no row of its own. `wake_at` is the earliest; once it is due,
-- the runner's poll moves the due timers into `jobs` as pending timer jobs, and from there they
-- fire as before (leased, fenced, retried, dead when they cannot run). Timer jobs already in
-- `jobs` are untouched and fire as they always did.
alter table wix_engine.workflows
  add column timers jsonb not null default '[]',
  add column wake_at timestamptz;
create index workflows_wake_idx on wix_engine.workflows (wake_at) where wake_at is not null;
