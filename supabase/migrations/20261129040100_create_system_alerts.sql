-- Operations alerts (issue 16, the operations guide's "Alertes automatiques"): one row per time a
-- condition went bad, from when it was raised to when it cleared. The system status lists the open
-- ones; the scheduled evaluation (a later migration) raises, notifies and clears them.
--
-- Kinds (the conditions the guide lists, as the status checks them):
--   settings                 a setting is missing or malformed
--   sms_error_rate           more than 5 % of the last 24 h's outbound SMS failed
--   stripe_webhook_failures  1 % or more of the last 24 h's Stripe events failed
--   database_size            the database uses more than 80 % of DB_SIZE_QUOTA_MB
--   billing_sync_overdue     no complete billing sync for more than 26 h
--   cron_job_failed          a pg_cron job's last run failed (subject = the job's name)
-- ("CPU > 90 % for 5 min" is not visible from the database: README, "Alerts".)
--
-- Platform-wide, not tenant data: RLS on, no policy for the API roles, so a tenant admin querying
-- through the API sees nothing; service_role reads them (the function's list); the dashboard's
-- SQL editor (postgres) sees all. Rows change only on transitions (raise, notify, ack, clear), so
-- the generic audit trigger records each change; the transitions also write readable audit rows
-- (area 'system', action alert_raised / alert_cleared / alert_acked / alert_notified).
create table public.system_alerts (
  id bigint generated always as identity primary key,
  kind text not null check (kind in (
    'settings', 'sms_error_rate', 'stripe_webhook_failures', 'database_size', 'billing_sync_overdue', 'cron_job_failed'
  )),
  -- What the alert is about within its kind (a cron job's name); '' when the kind says it all.
  subject text not null default '' check (length(subject) <= 200),
  state text not null default 'open' check (state in ('open', 'acked', 'cleared')),
  raised_at timestamptz not null default now() check (isfinite(raised_at)),
  acked_at timestamptz,
  acked_by text check (length(acked_by) <= 200),
  cleared_at timestamptz,
  -- The check's numbers when it was raised (setting names, rates, counts): never a value.
  details jsonb not null default '{}' check (jsonb_typeof(details) = 'object'),
  -- Notification to OWNER_MOBILE: when one was last claimed, how many, and how the last one went.
  last_notified_at timestamptz,
  notifications integer not null default 0 check (notifications >= 0),
  last_notification_status text check (last_notification_status in ('pending', 'sent', 'failed', 'suppressed')),
  updated_at timestamptz not null default now(),
  constraint system_alerts_cleared_consistent check ((state = 'cleared') = (cleared_at is not null)),
  constraint system_alerts_acked_consistent check (state <> 'acked' or acked_at is not null)
);

-- At most one alert per (kind, subject) that is not cleared: a second raise of the same condition
-- while it is still open is impossible, whatever two evaluations do at once.
create unique index system_alerts_active_kind_subject_idx
  on public.system_alerts (kind, subject) where state <> 'cleared';
-- The cooldown: the latest notification of a (kind, subject), across its past alerts.
create index system_alerts_kind_subject_notified_idx
  on public.system_alerts (kind, subject, last_notified_at);
-- Lists, newest first.
create index system_alerts_raised_at_idx on public.system_alerts (raised_at);

create trigger set_updated_at before update on public.system_alerts
  for each row execute function private.set_updated_at();

comment on table public.system_alerts is 'Operations alerts raised by the scheduled system-status evaluation (settings, SMS error rate, Stripe webhook failures, database size, billing sync overdue, failed cron job); one row from raise to clear. Platform-wide: service and dashboard only.';
comment on column public.system_alerts.id is 'Row identifier.';
comment on column public.system_alerts.kind is 'settings, sms_error_rate, stripe_webhook_failures, database_size, billing_sync_overdue or cron_job_failed.';
comment on column public.system_alerts.subject is 'What the alert is about within its kind (the pg_cron job name for cron_job_failed); empty otherwise.';
comment on column public.system_alerts.state is 'open (bad, not acknowledged), acked (bad, acknowledged by an operator), cleared (back to normal).';
comment on column public.system_alerts.raised_at is 'When the condition went bad.';
comment on column public.system_alerts.acked_at is 'When an operator acknowledged it (npm run ops -- alerts ack).';
comment on column public.system_alerts.acked_by is 'Who acknowledged it (free text given by the operator''s tool).';
comment on column public.system_alerts.cleared_at is 'When the condition was seen back to normal.';
comment on column public.system_alerts.details is 'The check''s numbers when raised (rates, counts, setting names); never a setting''s value.';
comment on column public.system_alerts.last_notified_at is 'When an SMS to OWNER_MOBILE was last claimed for it (the cooldown counts from here).';
comment on column public.system_alerts.notifications is 'How many notifications were claimed for it.';
comment on column public.system_alerts.last_notification_status is 'pending (claimed, not yet sent), sent, failed, or suppressed (cooldown: the same alert was notified recently).';
comment on column public.system_alerts.updated_at is 'Last change (set by trigger).';

alter table public.system_alerts enable row level security;
-- Hosted default privileges grant everything on new public tables to the API roles: start from
-- nothing. Writes go through the SQL functions (run as postgres); service_role may read.
revoke all on public.system_alerts from public, anon, authenticated, service_role;
revoke all on sequence public.system_alerts_id_seq from public, anon, authenticated, service_role;
grant select on public.system_alerts to service_role;

select private.enable_audit('public.system_alerts');
