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
  -- set once acted on; a delivery left unprocessed (its process died) is taken up again
  processed_at timestamptz,
  claimed_until timestamptz,
  -- what acting on it did, in words an admin reads ("started installation …", "ignored: …")
  outcome text
);
create index webhook_deliveries_pending_idx on webhook_deliveries (received_at) where processed_at is null;
create index webhook_deliveries_instance_idx on webhook_deliveries (instance_id, received_at desc);
