CREATE SCHEMA wix_engine;

CREATE SCHEMA wix_install;

CREATE FUNCTION wix_engine.effects_due(effects jsonb) RETURNS timestamp with time zone
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
  select min(case when e->>'status' = 'running' then (e->>'lease_until')::timestamptz else (e->>'run_at')::timestamptz end)
  from jsonb_array_elements(effects) e
$$;

CREATE FUNCTION wix_engine.effects_patched(effects jsonb, matching jsonb, patch jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  select coalesce(jsonb_agg(case when exists (select 1 from jsonb_array_elements(matching) m where e @> m) then e || patch else e end
                            order by o), '[]'::jsonb)
  from jsonb_array_elements(effects) with ordinality x(e, o)
$$;

CREATE FUNCTION wix_engine.effects_without(effects jsonb, matching jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  select coalesce(jsonb_agg(e order by o), '[]'::jsonb)
  from jsonb_array_elements(effects) with ordinality x(e, o)
  where not exists (select 1 from jsonb_array_elements(matching) m where e @> m)
$$;

CREATE TABLE wix_engine.job_attempts (
    job_id uuid NOT NULL,
    attempt integer NOT NULL,
    workflow_id uuid NOT NULL,
    outcome text NOT NULL,
    started_at timestamp with time zone NOT NULL,
    finished_at timestamp with time zone NOT NULL,
    error jsonb,
    name text,
    CONSTRAINT job_attempts_outcome_check CHECK ((outcome = ANY (ARRAY['ok'::text, 'retry'::text, 'failed'::text])))
);

CREATE TABLE wix_engine.jobs (
    id uuid NOT NULL,
    workflow_id uuid NOT NULL,
    kind text NOT NULL,
    name text NOT NULL,
    src text,
    payload text,
    event jsonb,
    status text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    run_at timestamp with time zone NOT NULL,
    lease_owner text,
    lease_until timestamp with time zone,
    last_error jsonb,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    CONSTRAINT jobs_kind_check CHECK ((kind = ANY (ARRAY['effect'::text, 'timer'::text]))),
    CONSTRAINT jobs_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'running'::text, 'done'::text, 'failed'::text, 'cancelled'::text, 'discarded'::text, 'dead'::text])))
);

CREATE TABLE wix_engine.workflows (
    id uuid NOT NULL,
    machine text NOT NULL,
    machine_version integer NOT NULL,
    key text,
    state text NOT NULL,
    reason text,
    snapshot jsonb NOT NULL,
    version integer NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    timers jsonb DEFAULT '[]'::jsonb NOT NULL,
    wake_at timestamp with time zone,
    effects jsonb DEFAULT '[]'::jsonb NOT NULL,
    effect_due_at timestamp with time zone
);

CREATE VIEW wix_engine.live_jobs AS
 SELECT jobs.id,
    jobs.workflow_id,
    jobs.kind,
    jobs.name,
    jobs.status,
    jobs.attempts,
    jobs.run_at,
    jobs.lease_owner,
    jobs.lease_until
   FROM wix_engine.jobs
  WHERE (jobs.status = ANY (ARRAY['pending'::text, 'running'::text]))
UNION ALL
 SELECT ((e.value ->> 'id'::text))::uuid AS id,
    w.id AS workflow_id,
    'effect'::text AS kind,
    (e.value ->> 'name'::text) AS name,
    (e.value ->> 'status'::text) AS status,
    ((e.value ->> 'attempts'::text))::integer AS attempts,
    ((e.value ->> 'run_at'::text))::timestamp with time zone AS run_at,
    (e.value ->> 'owner'::text) AS lease_owner,
    ((e.value ->> 'lease_until'::text))::timestamp with time zone AS lease_until
   FROM wix_engine.workflows w,
    LATERAL jsonb_array_elements(w.effects) e(value)
  WHERE (w.effect_due_at IS NOT NULL);

CREATE TABLE wix_engine.migrations (
    id integer NOT NULL,
    name text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE wix_engine.workflow_history (
    workflow_id uuid NOT NULL,
    seq integer NOT NULL,
    events jsonb NOT NULL,
    at timestamp with time zone NOT NULL
);

CREATE VIEW wix_engine.workflow_events AS
 SELECT h.workflow_id,
    e.seq,
    e.event_type,
    e.event,
    e.from_state,
    e.to_state,
    e.source,
    h.at,
    h.seq AS write_seq
   FROM (wix_engine.workflow_history h
     CROSS JOIN LATERAL jsonb_to_recordset(h.events) e(seq integer, event_type text, event jsonb, from_state text, to_state text, source text));

CREATE TABLE wix_install.console_sessions (
    id_hash text NOT NULL,
    csrf text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL
);

CREATE TABLE wix_install.exchanged_tokens (
    workflow_id uuid NOT NULL,
    refresh_token text NOT NULL,
    access_token text NOT NULL,
    obtained_at timestamp with time zone NOT NULL
);

CREATE TABLE wix_install.instance_tokens (
    instance_id text NOT NULL,
    workflow_id uuid NOT NULL,
    refresh_token text,
    access_token text,
    access_token_expires_at timestamp with time zone,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);

CREATE TABLE wix_install.maintenance (
    name text NOT NULL,
    owner text,
    lease_until timestamp with time zone,
    next_run_at timestamp with time zone NOT NULL,
    progress jsonb DEFAULT '{}'::jsonb NOT NULL,
    last_run jsonb
);

CREATE TABLE wix_install.migrations (
    id integer NOT NULL,
    name text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE wix_install.webhook_deliveries (
    id text NOT NULL,
    event_type text NOT NULL,
    instance_id text NOT NULL,
    data jsonb NOT NULL,
    received_at timestamp with time zone NOT NULL,
    issued_at timestamp with time zone,
    processed_at timestamp with time zone,
    claimed_until timestamp with time zone,
    outcome text,
    body text
);

ALTER TABLE ONLY wix_engine.job_attempts
    ADD CONSTRAINT job_attempts_pkey PRIMARY KEY (job_id, attempt);

ALTER TABLE ONLY wix_engine.jobs
    ADD CONSTRAINT jobs_pkey PRIMARY KEY (id);

ALTER TABLE ONLY wix_engine.migrations
    ADD CONSTRAINT migrations_pkey PRIMARY KEY (id);

ALTER TABLE ONLY wix_engine.workflow_history
    ADD CONSTRAINT workflow_history_pkey PRIMARY KEY (workflow_id, seq);

ALTER TABLE ONLY wix_engine.workflows
    ADD CONSTRAINT workflows_pkey PRIMARY KEY (id);

ALTER TABLE ONLY wix_install.console_sessions
    ADD CONSTRAINT console_sessions_pkey PRIMARY KEY (id_hash);

ALTER TABLE ONLY wix_install.exchanged_tokens
    ADD CONSTRAINT exchanged_tokens_pkey PRIMARY KEY (workflow_id);

ALTER TABLE ONLY wix_install.instance_tokens
    ADD CONSTRAINT instance_tokens_pkey PRIMARY KEY (instance_id);

ALTER TABLE ONLY wix_install.maintenance
    ADD CONSTRAINT maintenance_pkey PRIMARY KEY (name);

ALTER TABLE ONLY wix_install.migrations
    ADD CONSTRAINT migrations_pkey PRIMARY KEY (id);

ALTER TABLE ONLY wix_install.webhook_deliveries
    ADD CONSTRAINT webhook_deliveries_pkey PRIMARY KEY (id);

CREATE INDEX job_attempts_workflow_idx ON wix_engine.job_attempts USING btree (workflow_id);

CREATE INDEX jobs_dead_idx ON wix_engine.jobs USING btree (updated_at DESC) WHERE (status = 'dead'::text);

CREATE INDEX jobs_due_idx ON wix_engine.jobs USING btree (run_at) WHERE (status = 'pending'::text);

CREATE INDEX jobs_leased_idx ON wix_engine.jobs USING btree (lease_until) WHERE (status = 'running'::text);

CREATE INDEX jobs_workflow_idx ON wix_engine.jobs USING btree (workflow_id, kind, name) WHERE (status = ANY (ARRAY['pending'::text, 'running'::text]));

CREATE INDEX workflows_created_idx ON wix_engine.workflows USING btree (machine, created_at DESC, id DESC);

CREATE INDEX workflows_effect_due_idx ON wix_engine.workflows USING btree (effect_due_at) WHERE (effect_due_at IS NOT NULL);

CREATE INDEX workflows_ended_idx ON wix_engine.workflows USING btree (machine, state, updated_at) WHERE ((snapshot ->> 'status'::text) = 'done'::text);

CREATE INDEX workflows_key_idx ON wix_engine.workflows USING btree (machine, key, created_at DESC) WHERE (key IS NOT NULL);

CREATE INDEX workflows_reason_created_idx ON wix_engine.workflows USING btree (machine, reason, created_at DESC, id DESC) WHERE (reason IS NOT NULL);

CREATE INDEX workflows_reason_idx ON wix_engine.workflows USING btree (machine, reason, updated_at DESC, id DESC) WHERE (reason IS NOT NULL);

CREATE INDEX workflows_updated_idx ON wix_engine.workflows USING btree (machine, updated_at DESC, id DESC);

CREATE INDEX workflows_wake_idx ON wix_engine.workflows USING btree (wake_at) WHERE (wake_at IS NOT NULL);

CREATE INDEX console_sessions_expires_idx ON wix_install.console_sessions USING btree (expires_at);

CREATE INDEX instance_tokens_workflow_idx ON wix_install.instance_tokens USING btree (workflow_id);

CREATE INDEX webhook_deliveries_instance_idx ON wix_install.webhook_deliveries USING btree (instance_id, received_at DESC);

CREATE INDEX webhook_deliveries_pending_idx ON wix_install.webhook_deliveries USING btree (received_at) WHERE (processed_at IS NULL);

ALTER TABLE ONLY wix_install.exchanged_tokens
    ADD CONSTRAINT exchanged_tokens_workflow_id_fkey FOREIGN KEY (workflow_id) REFERENCES wix_engine.workflows(id) ON DELETE CASCADE;

ALTER TABLE ONLY wix_install.instance_tokens
    ADD CONSTRAINT instance_tokens_workflow_id_fkey FOREIGN KEY (workflow_id) REFERENCES wix_engine.workflows(id) ON DELETE CASCADE;
