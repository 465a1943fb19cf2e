export async function insertWorkflow(sql, w, history, jobs) {
    await sql `
    with w as (
      insert into workflows (id, machine, machine_version, key, state, reason, snapshot, version, created_at, updated_at)
      values (${w.id}, ${w.machine}, ${w.machine_version}, ${w.key}, ${w.state}, ${w.reason},
              ${sql.json(w.snapshot)}::jsonb, ${w.version}, ${w.now}, ${w.now})
      returning id
    ), h as (
      insert into workflow_history (workflow_id, seq, event_type, event, from_state, to_state, source, at)
      select w.id, h.seq, h.event_type, h.event, h.from_state, h.to_state, h.source, ${w.now}
      from w, jsonb_to_recordset(${sql.json(history)}::jsonb)
        as h(seq int, event_type text, event jsonb, from_state text, to_state text, source text)
    )
    ${insertJobs(sql, jobs, w.now)}`;
}
const insertJobs = (sql, jobs, now) => sql `
  insert into jobs (id, workflow_id, kind, name, src, payload, event, status, attempts, run_at,
                    lease_owner, lease_until, created_at, updated_at)
  select j.id, w.id, j.kind, j.name, j.src, j.payload, j.event, j.status, j.attempts, j.run_at,
         j.lease_owner, j.lease_until, ${now}, ${now}
  from w, jsonb_to_recordset(${sql.json(jobs)}::jsonb)
    as j(id uuid, kind text, name text, src text, payload text, event jsonb, status text,
         attempts int, run_at timestamptz, lease_owner text, lease_until timestamptz)`;
export async function readWorkflow(sql, id, jobId) {
    const [row] = await sql `
    select w.*, (select status from jobs where id = ${jobId ?? null}::uuid) as job_status
    from workflows w where w.id = ${id}`;
    return row;
}
/** Writes an accepted event. False when another writer got there first. */
export async function commitTransition(sql, t) {
    const jobId = t.job?.id ?? null;
    const attempts = t.job ? [t.job.attempt] : [];
    const rows = await sql `
    with w as (
      update workflows
      set state = ${t.state}, key = ${t.key}, reason = ${t.reason}, snapshot = ${sql.json(t.snapshot)}::jsonb,
          machine_version = ${t.writtenMachineVersion},
          version = version + 1, updated_at = ${t.now}
      where id = ${t.id} and version = ${t.version} and machine_version = ${t.machineVersion}
        -- an effect's result counts only while its job is live (not cancelled, not taken over)
        and (${jobId}::uuid is null or exists (select 1 from jobs where id = ${jobId}::uuid and status in ('pending', 'running')))
      returning id, version
    ), h as (
      insert into workflow_history (workflow_id, seq, event_type, event, from_state, to_state, source, at)
      select w.id, w.version, ${t.eventType}, ${sql.json(t.event)}::jsonb, ${t.from}, ${t.to}, ${t.source}, ${t.now}
      from w
    ), done as (
      update jobs set status = 'done', lease_owner = null, lease_until = null, updated_at = ${t.now}
      from w where jobs.id = ${jobId}::uuid
    ), attempt as (
      insert into job_attempts (job_id, attempt, workflow_id, outcome, started_at, finished_at, error)
      select ${jobId}::uuid, a.attempt, w.id, a.outcome, a.started_at, ${t.now}, a.error
      from w, jsonb_to_recordset(${sql.json(attempts)}::jsonb)
        as a(attempt int, outcome text, started_at timestamptz, error jsonb)
    ), cancelled as (
      update jobs set status = 'cancelled', lease_owner = null, lease_until = null, updated_at = ${t.now}
      from w
      where jobs.workflow_id = w.id and jobs.status in ('pending', 'running')
        and jobs.id is distinct from ${jobId}::uuid
        and ((jobs.kind = 'effect' and (jobs.name = any(${t.respawned}::text[])
                                        or not jobs.name = any(${t.activeInvokes}::text[])))
          or (jobs.kind = 'timer' and jobs.name = any(${t.cancelledTimers}::text[])))
    ), new_jobs as (
      ${insertJobs(sql, t.jobs, t.now)}
    )
    select version from w`;
    return rows.length === 1;
}
/** Claims due jobs, and jobs whose lease ran out (their runner died), for `owner`. */
export async function claimJobs(sql, owner, now, leaseUntil, limit) {
    return sql `
    with due as (
      select id from jobs
      where (status = 'pending' and run_at <= ${now}) or (status = 'running' and lease_until < ${now})
      order by run_at
      limit ${limit}
      for update skip locked
    )
    update jobs j
    set status = 'running', lease_owner = ${owner}, lease_until = ${leaseUntil},
        attempts = j.attempts + 1, updated_at = ${now}
    from due, workflows w
    where j.id = due.id and w.id = j.workflow_id
    returning j.id, j.workflow_id, j.kind, j.name, j.src, j.payload, j.event, j.status, j.attempts,
              j.run_at, j.lease_owner, j.lease_until, w.machine`;
}
/** Puts a failed run back in the queue for a later attempt, recording this one. */
export async function retryJob(sql, id, owner, runAt, now, attempt) {
    await sql `
    with j as (
      update jobs set status = 'pending', run_at = ${runAt}, lease_owner = null, lease_until = null,
                      last_error = ${sql.json(attempt.error)}::jsonb, updated_at = ${now}
      where id = ${id} and status = 'running' and lease_owner = ${owner}
      returning id, workflow_id
    )
    insert into job_attempts (job_id, attempt, workflow_id, outcome, started_at, finished_at, error)
    select j.id, ${attempt.attempt}, j.workflow_id, ${attempt.outcome}, ${attempt.started_at}, ${now},
           ${sql.json(attempt.error)}::jsonb
    from j`;
}
/** Ends a job whose result the workflow no longer wants (it moved on). */
export async function discardJob(sql, id, now) {
    await sql `
    update jobs set status = 'discarded', lease_owner = null, lease_until = null, updated_at = ${now}
    where id = ${id} and status in ('pending', 'running')`;
}
/** Hands this owner's unfinished jobs back to the queue at once (graceful shutdown). */
export async function releaseLeases(sql, owner, now) {
    const rows = await sql `
    update jobs set status = 'pending', lease_owner = null, lease_until = null, run_at = ${now},
                    updated_at = ${now}
    where status = 'running' and lease_owner = ${owner}
    returning id`;
    return rows.length;
}
export async function readHistory(sql, id) {
    return sql `
    select seq, event_type, event, from_state, to_state, source, at
    from workflow_history where workflow_id = ${id} order by seq`;
}
