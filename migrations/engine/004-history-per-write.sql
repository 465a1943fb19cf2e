-- History: one row per committed write, not per event. A write accepts one event, or two when a
-- follow-up rides along, or a create's first events (`xstate.init` and any it started with):
-- they go as one row, in order, under the seq of the first. One row and one index entry per
-- write, where there were as many as it had events. `workflow_events` reads them back one event
-- a row, as the table used to hold them.
alter table wix_engine.workflow_history rename to workflow_history_by_event;
alter table wix_engine.workflow_history_by_event rename constraint workflow_history_pkey to workflow_history_by_event_pkey;

create table wix_engine.workflow_history (
  workflow_id uuid not null,
  -- the seq of the write's first event; the others follow it, one apart
  seq integer not null,
  -- the write's events in order: {seq, event_type, event, from_state, to_state, source}, each
  -- event redacted of secrets, enough to replay the machine
  events jsonb not null,
  at timestamptz not null,
  primary key (workflow_id, seq)
);

-- What was recorded before stays, one event a row.
insert into wix_engine.workflow_history (workflow_id, seq, events, at)
select workflow_id, seq,
       jsonb_build_array(jsonb_build_object('seq', seq, 'event_type', event_type, 'event', event,
                                            'from_state', from_state, 'to_state', to_state, 'source', source)),
       at
from wix_engine.workflow_history_by_event;
drop table wix_engine.workflow_history_by_event;

-- `write_seq`: the seq of the write an event came in; events sharing it were committed together.
create view wix_engine.workflow_events as
select h.workflow_id, e.seq, e.event_type, e.event, e.from_state, e.to_state, e.source, h.at, h.seq as write_seq
from wix_engine.workflow_history h
cross join lateral jsonb_to_recordset(h.events)
  as e(seq integer, event_type text, event jsonb, from_state text, to_state text, source text);
