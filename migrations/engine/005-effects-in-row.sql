-- A workflow's live effects live in its own row, as its timers do (002): the transition that
-- starts one writes it there, leased to the process that runs it at once, and the transition
-- that takes its result takes it out, in the row version either writes anyway. An effect no
-- longer costs a `jobs` row inserted and deleted (with three index entries each way). Each entry:
-- {id, name, src, payload, status ('pending' | 'running'), attempts, run_at, owner, lease_until},
-- `attempts` counting claims (the lease's epoch), `lease_until` on the database's clock.
-- `effect_due_at` is when the row has an effect to claim: the earliest pending one's run_at, or a
-- running one's lease end (its runner died). The runner's poll claims by it, as timers by wake_at.
-- `jobs` keeps timers once due, effects that ended dead (admins see them), and what ended before.
alter table wix_engine.workflows
  add column effects jsonb not null default '[]',
  add column effect_due_at timestamptz;
create index workflows_effect_due_idx on wix_engine.workflows (effect_due_at) where effect_due_at is not null;

-- When a row's effects are next due (null: none): a pending one at its run_at, a running one once its lease ends.
create function wix_engine.effects_due(effects jsonb) returns timestamptz
language sql stable parallel safe as $$
  select min(case when e->>'status' = 'running' then (e->>'lease_until')::timestamptz else (e->>'run_at')::timestamptz end)
  from jsonb_array_elements(effects) e
$$;

-- `effects` with `patch` merged into every entry that contains one of `matching` (jsonb objects:
-- a fence such as {"id": ..., "owner": ..., "attempts": ...}), in order.
create function wix_engine.effects_patched(effects jsonb, matching jsonb, patch jsonb) returns jsonb
language sql immutable parallel safe as $$
  select coalesce(jsonb_agg(case when exists (select 1 from jsonb_array_elements(matching) m where e @> m) then e || patch else e end
                            order by o), '[]'::jsonb)
  from jsonb_array_elements(effects) with ordinality x(e, o)
$$;

-- `effects` without the entries that contain one of `matching`.
create function wix_engine.effects_without(effects jsonb, matching jsonb) returns jsonb
language sql immutable parallel safe as $$
  select coalesce(jsonb_agg(e order by o), '[]'::jsonb)
  from jsonb_array_elements(effects) with ordinality x(e, o)
  where not exists (select 1 from jsonb_array_elements(matching) m where e @> m)
$$;

-- An attempt names its effect itself: a live effect has no `jobs` row to join to, so attempts
-- lose their key to jobs and go with their workflow (the engine's delete takes them).
alter table wix_engine.job_attempts add column name text;
update wix_engine.job_attempts a set name = j.name from wix_engine.jobs j where j.id = a.job_id;
alter table wix_engine.job_attempts drop constraint job_attempts_job_id_fkey;

-- Live effect jobs move into their workflows' rows, and out of `jobs`.
with live as (
  select workflow_id,
         jsonb_agg(jsonb_build_object(
           'id', id, 'name', name, 'src', src, 'payload', payload, 'status', status, 'attempts', attempts,
           'run_at', run_at, 'owner', lease_owner, 'lease_until', lease_until) order by created_at) as effects
  from wix_engine.jobs
  where kind = 'effect' and status in ('pending', 'running')
  group by workflow_id
)
update wix_engine.workflows w
set effects = live.effects, effect_due_at = wix_engine.effects_due(live.effects)
from live where w.id = live.workflow_id;
delete from wix_engine.jobs where kind = 'effect' and status in ('pending', 'running');

-- Every live job, wherever it lives, as one table: for operators and tools (the engine itself
-- reads the rows and `jobs` directly). A timer still in its workflow's row is not a job yet.
create view wix_engine.live_jobs as
  select id, workflow_id, kind, name, status, attempts, run_at, lease_owner, lease_until
  from wix_engine.jobs where status in ('pending', 'running')
  union all
  select (e->>'id')::uuid, w.id, 'effect', e->>'name', e->>'status', (e->>'attempts')::int, (e->>'run_at')::timestamptz,
         e->>'owner', (e->>'lease_until')::timestamptz
  from wix_engine.workflows w, jsonb_array_elements(w.effects) e
  where w.effect_due_at is not null;
