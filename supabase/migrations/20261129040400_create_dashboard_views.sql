-- Schema `dashboard`: ready-made views for the Supabase dashboard's SQL editor and table editor
-- (issue 16): today's SMS, delivery rate per day, errors of the last 24 h, Stripe webhook events by
-- type and result, consent changes, billing drift per sync run, pg_cron runs, open alerts, database
-- size history.
--
-- NOT exposed through the Data API: supabase/config.toml [api] schemas stays ["public"], so
-- PostgREST never serves these. Every view is security_invoker: it reads its tables with the
-- privileges and RLS of whoever queries it, never its owner's:
--   * the operator in the dashboard (postgres: bypasses RLS) sees every tenant;
--   * a tenant admin's session (role authenticated, e.g. a function running asUser) sees only
--     what the tables' RLS lets it see: its own tenants' SMS, consent changes and audit rows;
--     platform rows (tenant_id null: billing sync runs, maintenance) stay hidden;
--   * views over tables authenticated cannot read at all (Stripe events, pg_cron, alerts, status
--     history) are not granted to it: permission denied, rather than a view that looks empty;
--   * anon has no USAGE on the schema.
-- Local "day" = America/Montreal (the operators' day); the guide's own queries use the session's
-- CURRENT_DATE (UTC on hosted) and stay in the README as written.
create schema if not exists dashboard;
comment on schema dashboard is 'Operations views for the Supabase dashboard (SQL editor, table editor). Not exposed through the Data API; every view is security_invoker, so the tables'' RLS decides who sees which rows.';
revoke all on schema dashboard from public;
grant usage on schema dashboard to authenticated;

-- ---------------------------------------------------------------------------------------------
-- SMS
-- ---------------------------------------------------------------------------------------------
create view dashboard.sms_today with (security_invoker = true) as
select a.created_at,
       a.tenant_id,
       t.name as tenant_name,
       a.direction,
       a.from_number,
       a.to_number,
       a.status,
       a.error_code,
       a.error_message,
       a.provider_message_id,
       a.sent_at,
       a.delivered_at,
       a.id
  from public.sms_alerts as a
  left join public.tenants as t on t.id = a.tenant_id
 -- Midnight in Montreal, as a timestamptz: the created_at index serves the range.
 where a.created_at >= (date_trunc('day', now() at time zone 'America/Montreal') at time zone 'America/Montreal')
 order by a.created_at desc;
comment on view dashboard.sms_today is 'SMS of today (America/Montreal), newest first: direction, numbers, Twilio status and error. Message bodies are left out.';

create view dashboard.sms_delivery_daily with (security_invoker = true) as
select (a.created_at at time zone 'America/Montreal')::date as day,
       count(*) as outbound,
       count(*) filter (where a.status in ('delivered', 'read')) as delivered,
       count(*) filter (where a.status in ('undelivered', 'failed')) as failed,
       count(*) filter (where a.status not in ('delivered', 'read', 'undelivered', 'failed')) as pending,
       round(count(*) filter (where a.status in ('delivered', 'read'))::numeric
             / nullif(count(*) filter (where a.status in ('delivered', 'read', 'undelivered', 'failed')), 0), 4) as delivery_rate,
       round(count(*) filter (where a.status in ('undelivered', 'failed'))::numeric / count(*), 4) as error_rate
  from public.sms_alerts as a
 where a.direction = 'outbound' and a.status <> 'canceled'
 group by 1
 order by 1 desc;
comment on view dashboard.sms_delivery_daily is 'Outbound SMS per day (America/Montreal): delivered (or read), failed (undelivered or failed), pending; delivery_rate = delivered / decided (target above 0.95), error_rate = failed / all (alert above 0.05). Canceled messages are left out.';

create view dashboard.consent_changes with (security_invoker = true) as
select c.created_at,
       c.tenant_id,
       c.worker_id,
       w.full_name as worker_name,
       c.phone,
       c.new_consent,
       c.source,
       c.keyword,
       c.provider_message_id,
       c.actor,
       c.id
  from public.sms_consent_events as c
  left join public.workers as w on w.id = c.worker_id
 order by c.created_at desc;
comment on view dashboard.consent_changes is 'SMS consent changes (STOP/ARRÊT, START, admin, API, carrier error), newest first, with the worker''s name. The message bodies are left out.';

-- ---------------------------------------------------------------------------------------------
-- Audit trail
-- ---------------------------------------------------------------------------------------------
create view dashboard.errors_last_24h with (security_invoker = true) as
select l.created_at,
       l.area,
       l.action,
       l.actor,
       l.tenant_id,
       l.target,
       l.details ->> 'error' as error,
       l.details,
       l.id
  from public.system_audit_logs as l
 where l.created_at > now() - interval '24 hours'
   and (l.details ->> 'error') is not null
 order by l.created_at desc;
comment on view dashboard.errors_last_24h is 'The guide''s "Erreurs des dernières 24h": audit rows of the last 24 hours whose details carry an error, newest first.';

-- The billing-sync contract: one audit row per run, area billing, action billing_sync, details
-- {run_id, status complete|incomplete|failed, drift: {customers|subscriptions|invoices:
-- {created, changed, missing}}, api_calls, error?}. Numbers are read defensively: a row whose
-- details lack one shows null, it does not break the view.
create view dashboard.billing_sync_runs with (security_invoker = true) as
select l.created_at as ran_at,
       l.details ->> 'run_id' as run_id,
       l.details ->> 'status' as status,
       case when jsonb_typeof(l.details #> '{drift,customers,created}') = 'number' then (l.details #>> '{drift,customers,created}')::numeric end as customers_created,
       case when jsonb_typeof(l.details #> '{drift,customers,changed}') = 'number' then (l.details #>> '{drift,customers,changed}')::numeric end as customers_changed,
       case when jsonb_typeof(l.details #> '{drift,customers,missing}') = 'number' then (l.details #>> '{drift,customers,missing}')::numeric end as customers_missing,
       case when jsonb_typeof(l.details #> '{drift,subscriptions,created}') = 'number' then (l.details #>> '{drift,subscriptions,created}')::numeric end as subscriptions_created,
       case when jsonb_typeof(l.details #> '{drift,subscriptions,changed}') = 'number' then (l.details #>> '{drift,subscriptions,changed}')::numeric end as subscriptions_changed,
       case when jsonb_typeof(l.details #> '{drift,subscriptions,missing}') = 'number' then (l.details #>> '{drift,subscriptions,missing}')::numeric end as subscriptions_missing,
       case when jsonb_typeof(l.details #> '{drift,invoices,created}') = 'number' then (l.details #>> '{drift,invoices,created}')::numeric end as invoices_created,
       case when jsonb_typeof(l.details #> '{drift,invoices,changed}') = 'number' then (l.details #>> '{drift,invoices,changed}')::numeric end as invoices_changed,
       case when jsonb_typeof(l.details #> '{drift,invoices,missing}') = 'number' then (l.details #>> '{drift,invoices,missing}')::numeric end as invoices_missing,
       case when jsonb_typeof(l.details -> 'api_calls') = 'number' then (l.details ->> 'api_calls')::numeric end as api_calls,
       l.details ->> 'error' as error,
       l.id
  from public.system_audit_logs as l
 where l.area = 'billing' and l.action = 'billing_sync'
 order by l.created_at desc;
comment on view dashboard.billing_sync_runs is 'Billing drift per billing-sync run, newest first: status (complete, incomplete, failed), rows created/changed/missing per table, Stripe API calls, error. Platform rows: tenant admins see none.';

-- ---------------------------------------------------------------------------------------------
-- Stripe webhooks, pg_cron, alerts, status history: operators only (not granted to authenticated)
-- ---------------------------------------------------------------------------------------------
create view dashboard.webhook_events with (security_invoker = true) as
select e.type,
       -- stripe-webhook's outcome (applied, ignored, parked, needs_fetch, received, failed); rows
       -- written without one: processed, failed (error, not processed) or pending.
       coalesce(e.outcome, case when e.processed_at is not null then 'processed'
                                when e.error is not null then 'failed'
                                else 'pending' end) as result,
       count(*) as events,
       count(*) filter (where e.received_at > now() - interval '24 hours') as last_24h,
       min(e.received_at) as first_received_at,
       max(e.received_at) as last_received_at
  from public.billing_events as e
 where e.received_at > now() - interval '30 days'
 group by 1, 2
 order by 1, 2;
comment on view dashboard.webhook_events is 'Stripe webhook events of the last 30 days by type and result (stripe-webhook''s outcome: applied, ignored, parked, needs_fetch, received, failed), with the last 24 h''s count. Failed events: select * from billing_events where processed_at is null and error is not null.';

create view dashboard.cron_runs with (security_invoker = true) as
select j.jobname,
       d.status,
       d.start_time,
       d.end_time,
       d.end_time - d.start_time as duration,
       d.return_message,
       j.schedule,
       j.active,
       d.jobid,
       d.runid
  from cron.job_run_details as d
  left join cron.job as j on j.jobid = d.jobid
 order by d.runid desc;
comment on view dashboard.cron_runs is 'pg_cron runs, newest first, with the job''s name, schedule and whether it is active; return_message holds the error of a failed run. Kept 30 days (the status evaluation purges older runs).';

create view dashboard.open_alerts with (security_invoker = true) as
select a.raised_at,
       a.kind,
       a.subject,
       a.state,
       a.acked_at,
       a.acked_by,
       a.last_notified_at,
       a.last_notification_status,
       a.details,
       a.id
  from public.system_alerts as a
 where a.state <> 'cleared'
 order by a.raised_at desc;
comment on view dashboard.open_alerts is 'Alerts not cleared yet (open or acknowledged), newest first.';

create view dashboard.status_history with (security_invoker = true) as
select h.checked_at,
       h.overall,
       h.caller,
       h.evaluated_alerts,
       h.checks #>> '{settings,status}' as settings,
       h.checks #>> '{cron,status}' as cron,
       h.checks #>> '{sms,status}' as sms,
       case when jsonb_typeof(h.checks #> '{sms,error_rate}') = 'number' then (h.checks #>> '{sms,error_rate}')::numeric end as sms_error_rate,
       h.checks #>> '{stripe_webhooks,status}' as stripe_webhooks,
       h.checks #>> '{billing_sync,status}' as billing_sync,
       h.checks #>> '{database_size,status}' as database_size,
       h.db_size_bytes,
       h.id
  from private.system_status_history as h
 order by h.checked_at desc;
comment on view dashboard.status_history is 'Each recorded system-status evaluation (30 days), newest first: the overall status and each check''s.';

create view dashboard.database_size_history with (security_invoker = true) as
select (h.checked_at at time zone 'America/Montreal')::date as day,
       max(h.db_size_bytes) as max_bytes,
       pg_catalog.pg_size_pretty(max(h.db_size_bytes)) as max_size,
       min(h.db_size_bytes) as min_bytes,
       max(h.db_size_quota_bytes) as quota_bytes,
       round(max(h.db_size_bytes::numeric / h.db_size_quota_bytes), 4) as max_used_ratio,
       count(*) as samples
  from private.system_status_history as h
 where h.db_size_bytes is not null
 group by 1
 order by 1 desc;
comment on view dashboard.database_size_history is 'Database size per day (America/Montreal) from the recorded status evaluations (30 days): largest and smallest size, the quota (DB_SIZE_QUOTA_MB), the largest share of it used (alert above 0.8).';

-- Views get no privilege by default outside public; state it anyway, then grant the tenant-scoped
-- ones to authenticated (RLS of their tables decides the rows).
revoke all on all tables in schema dashboard from public, anon, authenticated, service_role;
grant select on dashboard.sms_today, dashboard.sms_delivery_daily, dashboard.consent_changes,
  dashboard.errors_last_24h, dashboard.billing_sync_runs to authenticated;
