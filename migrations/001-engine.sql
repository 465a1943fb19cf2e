-- The durable workflow engine: one row per workflow (an installation is one), its accepted
-- events, and the jobs (side effects and timers) its transitions asked for.

create table workflows (
  id uuid primary key,
  machine text not null,
  machine_version integer not null,
  -- business key, set by the machine once known (an installation's Wix instanceId)
  key text,
  -- top-level state name, and the failure reason if the machine recorded one: for filtering
  state text not null,
  reason text,
  snapshot jsonb not null,
  version integer not null,
  created_at timestamptz not null,
  updated_at timestamptz not null
);
create index workflows_key_idx on workflows (machine, key, created_at desc) where key is not null;
create index workflows_state_idx on workflows (machine, state, updated_at desc, id desc);
create index workflows_updated_idx on workflows (machine, updated_at desc, id desc);

create table workflow_history (
  workflow_id uuid not null references workflows (id) on delete cascade,
  seq integer not null,
  event_type text not null,
  -- the event with secrets redacted: enough to replay the machine, never a credential
  event jsonb not null,
  from_state text,
  to_state text not null,
  source text not null,
  at timestamptz not null,
  primary key (workflow_id, seq)
);

create table jobs (
  id uuid primary key,
  workflow_id uuid not null references workflows (id) on delete cascade,
  -- 'effect': run actor `src` with `payload` (sealed: it can hold an OAuth code);
  -- 'timer': deliver `event` at `run_at`
  kind text not null check (kind in ('effect', 'timer')),
  -- the invoke id of an effect, the delayed event's id of a timer
  name text not null,
  src text,
  payload text,
  event jsonb,
  status text not null check (status in ('pending', 'running', 'done', 'failed', 'cancelled', 'discarded')),
  attempts integer not null default 0,
  run_at timestamptz not null,
  lease_owner text,
  lease_until timestamptz,
  last_error jsonb,
  created_at timestamptz not null,
  updated_at timestamptz not null
);
create index jobs_due_idx on jobs (run_at) where status = 'pending';
create index jobs_leased_idx on jobs (lease_until) where status = 'running';
create index jobs_workflow_idx on jobs (workflow_id, kind, name) where status in ('pending', 'running');

create table job_attempts (
  job_id uuid not null references jobs (id) on delete cascade,
  attempt integer not null,
  workflow_id uuid not null,
  outcome text not null check (outcome in ('ok', 'retry', 'failed')),
  started_at timestamptz not null,
  finished_at timestamptz not null,
  error jsonb,
  primary key (job_id, attempt)
);
create index job_attempts_workflow_idx on job_attempts (workflow_id);
