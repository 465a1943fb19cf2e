-- What the installation flow keeps beside the engine's workflows, in a schema of its own so its
-- tables never meet the host app's. It refers to the engine's workflows by id only.
create schema if not exists wix_install;

-- One row per Wix instance: a new flow for a known instance replaces its tokens. Installs Wix
-- completes by itself (the AppInstalled webhook, new apps) hold no refresh token: their access
-- tokens are minted by client credentials and cached here until they expire.
create table wix_install.instance_tokens (
  instance_id text primary key,
  -- the installation whose tokens these are (makes the exchange idempotent)
  workflow_id uuid not null references wix_engine.workflows (id) on delete cascade,
  -- AES-256-GCM, "v1.<key id>.<iv>.<ciphertext+tag>"
  refresh_token text,
  access_token text,
  access_token_expires_at timestamptz,
  created_at timestamptz not null,
  updated_at timestamptz not null
);
create index instance_tokens_workflow_idx on wix_install.instance_tokens (workflow_id);

-- An exchange's tokens between Wix's answer and the instance lookup that says whose they are:
-- the code is spent by then, so a run that dies in between must find them, not spend it again.
create table wix_install.exchanged_tokens (
  workflow_id uuid primary key references wix_engine.workflows (id) on delete cascade,
  -- AES-256-GCM, as in instance_tokens
  refresh_token text not null,
  access_token text not null,
  obtained_at timestamptz not null
);

-- Every verified webhook delivery, recorded before it is answered and acted on after commit.
-- The id is the sha256 of the signed body: Wix repeats a delivery byte for byte, so a repeat
-- (however concurrent) finds its row and is answered without acting twice.
create table wix_install.webhook_deliveries (
  id text primary key,
  event_type text not null,
  instance_id text not null,
  -- the event's own data (e.g. AppInstalled's appId and originInstanceId); never a credential
  data jsonb not null,
  received_at timestamptz not null,
  -- when Wix signed it (the JWT's iat), if it said: orders an instance's deliveries, and tells a
  -- late retry of an AppRemoved from one about the installation that followed it
  issued_at timestamptz,
  -- set once acted on; a delivery left unprocessed (its process died) is taken up again
  processed_at timestamptz,
  claimed_until timestamptz,
  -- what acting on it did, in words an admin reads ("started installation …", "ignored: …")
  outcome text
);
create index webhook_deliveries_pending_idx on wix_install.webhook_deliveries (received_at) where processed_at is null;
create index webhook_deliveries_instance_idx on wix_install.webhook_deliveries (instance_id, received_at desc);

-- Housekeeping jobs that must run in one instance at a time and remember how far they got:
-- one row each, leased like a job, with the schedule and progress that survive restarts.
create table wix_install.maintenance (
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

-- Admin console sign-ins. The browser holds only a random session id (in a signed HttpOnly cookie);
-- the row keeps its SHA-256, so a database read cannot be replayed as a session. Sign-out deletes
-- the row: a copied cookie dies with it, on every instance.
create table wix_install.console_sessions (
  id_hash text primary key,
  csrf text not null,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null
);
create index console_sessions_expires_idx on wix_install.console_sessions (expires_at);
