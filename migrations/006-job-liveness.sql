-- Jobs that can never run (a payload no key opens, a machine no longer registered, an attempt
-- budget spent by crashes) end 'dead' with their reason in last_error, instead of being claimed
-- again every lease period. Leases are now short and renewed by the runner's heartbeat, on the
-- database's clock; `attempts` doubles as the lease epoch that fences a run's results.
alter table jobs drop constraint jobs_status_check;
alter table jobs add constraint jobs_status_check
  check (status in ('pending', 'running', 'done', 'failed', 'cancelled', 'discarded', 'dead'));
create index jobs_dead_idx on jobs (updated_at desc) where status = 'dead';
