-- What the installation flow needs beside the generic engine tables.

-- The callback finds its installation by the sha256 of the OAuth `state` it carries. The hash,
-- unlike the state itself, is no secret, so it may live in the context admins see.
create index workflows_state_hash_idx on workflows ((snapshot -> 'context' ->> 'stateHash'))
  where machine = 'installation';

-- One row per Wix instance: a new flow for a known instance replaces its tokens.
create table instance_tokens (
  instance_id text primary key,
  -- the installation whose code exchange produced these tokens (makes the exchange idempotent)
  workflow_id uuid not null references workflows (id) on delete cascade,
  -- AES-256-GCM, "v1.<key id>.<iv>.<ciphertext+tag>"
  refresh_token text not null,
  access_token text,
  access_token_expires_at timestamptz,
  created_at timestamptz not null,
  updated_at timestamptz not null
);
create index instance_tokens_workflow_idx on instance_tokens (workflow_id);

-- The admin list filters by failure reason, newest-updated first.
create index workflows_reason_idx on workflows (machine, reason, updated_at desc, id desc)
  where reason is not null;
