-- Housekeeping jobs that must run in one instance at a time and remember how far they got:
-- one row each, leased like a job, with the schedule and progress that survive restarts.
create table maintenance (
  name text primary key,
  -- the instance running it now, and until when (a dead instance's lease runs out)
  owner text,
  lease_until timestamptz,
  next_run_at timestamptz not null,
  -- where an incremental pass resumes (e.g. up to which updated_at Finished flows are pruned)
  progress jsonb not null default '{}',
  -- what the last complete run did, for admins
  last_run jsonb
);
