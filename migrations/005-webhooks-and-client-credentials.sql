-- Installs Wix completes by itself (the AppInstalled webhook, new apps) hold no refresh token:
-- their access tokens are minted by client credentials and cached here until they expire.
alter table instance_tokens alter column refresh_token drop not null;

-- Every verified webhook delivery, recorded before it is answered and acted on after commit.
-- The id is the sha256 of the signed body: Wix repeats a delivery byte for byte, so a repeat
-- (however concurrent) finds its row and is answered without acting twice.
create table webhook_deliveries (
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
create index webhook_deliveries_pending_idx on webhook_deliveries (received_at) where processed_at is null;
create index webhook_deliveries_instance_idx on webhook_deliveries (instance_id, received_at desc);

-- An exchange's tokens between Wix's answer and the instance lookup that says whose they are:
-- the code is spent by then, so a run that dies in between must find them, not spend it again.
create table exchanged_tokens (
  workflow_id uuid primary key references workflows (id) on delete cascade,
  -- AES-256-GCM, as in instance_tokens
  refresh_token text not null,
  access_token text not null,
  obtained_at timestamptz not null
);

-- Version 1 keyed an installation by the Redirect URL's instanceId before Wix confirmed it. A
-- failed exchange that never stored tokens had only that claim: it must not answer for the instance.
update workflows set key = null
where machine = 'installation' and machine_version = 1 and state in ('ExchangeFailed', 'CodeExpired')
  and not exists (select 1 from instance_tokens t where t.workflow_id = workflows.id);
