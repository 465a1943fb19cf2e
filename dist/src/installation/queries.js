export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** An installation by its id or, the newest for it, by its Wix instanceId: one statement. */
export async function findInstallation(sql, ref) {
    const id = UUID.test(ref) ? ref : null;
    const [row] = await sql `
    select * from workflows
    where machine = 'installation' and (id = ${id}::uuid or key = ${ref})
    order by (id = ${id}::uuid) is true desc, created_at desc
    limit 1`;
    return row;
}
/** An installation's id, by its id or, the newest for it, by its Wix instanceId. */
export async function findInstallationId(sql, idOrInstanceId) {
    const byId = UUID.test(idOrInstanceId)
        ? await sql `select id from workflows where id = ${idOrInstanceId} and machine = 'installation'`
        : [];
    if (byId[0])
        return byId[0].id;
    const [byKey] = await sql `
    select id from workflows where machine = 'installation' and key = ${idOrInstanceId}
    order by created_at desc limit 1`;
    return byKey?.id;
}
export const listOrder = (f) => f.createdFrom || f.createdTo ? 'created' : 'updated';
/** One page of installations in `listOrder(f)`, by keyset (no offset: deep pages stay cheap). */
export async function listInstallations(sql, f) {
    const created = listOrder(f) === 'created';
    // A cursor at or past the window's end excludes nothing more, but as a row comparison Postgres
    // would start the index scan from it, reading every entry between it and the window: drop it.
    const end = created ? f.createdTo : f.updatedTo;
    const after = f.after && !(end && f.after.at >= end) ? f.after : undefined;
    return sql `
    select * from workflows
    where machine = 'installation'
      ${f.state ? sql `and state = ${f.state}` : sql ``}
      ${f.reason ? sql `and reason = ${f.reason}` : sql ``}
      ${f.instanceId ? sql `and key = ${f.instanceId}` : sql ``}
      ${f.createdFrom ? sql `and created_at >= ${f.createdFrom}` : sql ``}
      ${f.createdTo ? sql `and created_at < ${f.createdTo}` : sql ``}
      ${f.updatedFrom ? sql `and updated_at >= ${f.updatedFrom}` : sql ``}
      ${f.updatedTo ? sql `and updated_at < ${f.updatedTo}` : sql ``}
      ${!after ? sql ``
        : created ? sql `and (created_at, id) < (${after.at}, ${after.id}::uuid)`
            : sql `and (updated_at, id) < (${after.at}, ${after.id}::uuid)`}
    ${created ? sql `order by created_at desc, id desc` : sql `order by updated_at desc, id desc`}
    limit ${f.limit}`;
}
/** Installations by state, failures by reason, and the job queue's depth and oldest wait. */
export async function installationStats(sql, now) {
    const [byState, byReason, [jobs]] = await Promise.all([
        sql `
      select state, count(*)::int as n from workflows where machine = 'installation' group by state`,
        sql `
      select reason, count(*)::int as n from workflows
      where machine = 'installation' and reason is not null group by reason`,
        sql `
      select count(*) filter (where status = 'pending' and run_at <= ${now})::int as waiting,
             count(*) filter (where status = 'running')::int as running,
             min(run_at) filter (where status = 'pending' and run_at <= ${now}) as oldest
      from jobs where status in ('pending', 'running')`,
    ]);
    return { byState, byReason, jobs: jobs };
}
/** Every run of every effect of one installation, oldest first. */
export async function effectAttempts(sql, workflowId) {
    return sql `
    select coalesce(j.src, j.name) as effect, a.attempt, a.outcome, a.started_at, a.finished_at, a.error
    from job_attempts a join jobs j on j.id = a.job_id
    where a.workflow_id = ${workflowId} and j.kind = 'effect'
    order by a.started_at, a.attempt`;
}
