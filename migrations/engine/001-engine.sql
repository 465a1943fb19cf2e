-- The durable workflow engine, in a schema of its own so its tables never meet the host app's:
-- one row per workflow (an installation is one), its accepted events, and the jobs (side
-- effects and timers) its transitions asked for. Only the engine's code reads these tables.
create schema if not exists wix_engine;

create table wix_engine.workflows (
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
-- Lists by key, state, failure reason, creation and last change, newest first, ties by id.
create index workflows_key_idx on wix_engine.workflows (machine, key, created_at desc) where key is not null;
create index workflows_state_idx on wix_engine.workflows (machine, state, updated_at desc, id desc);
create index workflows_updated_idx on wix_engine.workflows (machine, updated_at desc, id desc);
create index workflows_reason_idx on wix_engine.workflows (machine, reason, updated_at desc, id desc)
  where reason is not null;
create index workflows_created_idx on wix_engine.workflows (machine, created_at desc, id desc);

create table wix_engine.workflow_history (
  workflow_id uuid not null references wix_engine.workflows (id) on delete cascade,
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

create table wix_engine.jobs (
  id uuid primary key,
  workflow_id uuid not null references wix_engine.workflows (id) on delete cascade,
  -- 'effect': run actor `src` with `payload` (sealed: it can hold an OAuth code);
  -- 'timer': deliver `event` at `run_at`
  kind text not null check (kind in ('effect', 'timer')),
  -- the invoke id of an effect, the delayed event's id of a timer
  name text not null,
  src text,
  payload text,
  event jsonb,
  -- 'dead': a job that can never run (a payload no key opens, a machine no longer registered,
  -- an attempt budget spent by crashes), with its reason in last_error
  status text not null check (status in ('pending', 'running', 'done', 'failed', 'cancelled', 'discarded', 'dead')),
  -- also the lease epoch: every claim bumps it, which fences a run's results
  attempts integer not null default 0,
  run_at timestamptz not null,
  -- a running job's lease, on the database's clock, renewed by its runner's heartbeat
  lease_owner text,
  lease_until timestamptz,
  last_error jsonb,
  created_at timestamptz not null,
  updated_at timestamptz not null
);
create index jobs_due_idx on wix_engine.jobs (run_at) where status = 'pending';
create index jobs_leased_idx on wix_engine.jobs (lease_until) where status = 'running';
create index jobs_workflow_idx on wix_engine.jobs (workflow_id, kind, name) where status in ('pending', 'running');
create index jobs_dead_idx on wix_engine.jobs (updated_at desc) where status = 'dead';

create table wix_engine.job_attempts (
  job_id uuid not null references wix_engine.jobs (id) on delete cascade,
  attempt integer not null,
  workflow_id uuid not null,
  outcome text not null check (outcome in ('ok', 'retry', 'failed')),
  started_at timestamptz not null,
  finished_at timestamptz not null,
  error jsonb,
  primary key (job_id, attempt)
);
create index job_attempts_workflow_idx on wix_engine.job_attempts (workflow_id);
