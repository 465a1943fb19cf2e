-- An installation whose Redirect URL claimed an instance that Wix has not confirmed is found by
-- that claim, marked as one: its key is 'claim:<instance id>', apart from the confirmed instance
-- id, so a claim never hides the installation Wix confirmed. Installations written before had no
-- key until Wix confirmed them; those that never were (a refused code) get theirs here.
update wix_engine.workflows
set key = 'claim:' || lower(snapshot -> 'context' ->> 'claimedInstanceId')
where machine = 'installation' and key is null
  and snapshot -> 'context' ->> 'claimedInstanceId' is not null;
