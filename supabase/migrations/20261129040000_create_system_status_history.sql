-- History of the system status (issue 16): one row per evaluation of the `system-status` function
-- by an authorised caller (the service, e.g. the 5-minute scheduled evaluation, or a tenant admin),
-- so trends (database size, SMS error rate, …) can be shown (dashboard.database_size_history).
--
-- In `private`, like private.sms_send_requests: it is operations data, not tenant data, and only
-- private.system_status() (run by the function as postgres) writes it. No API role has any
-- privilege on it; the dashboard's SQL editor (postgres) reads it. RLS is enabled anyway (no
-- policy): should a grant ever be added by mistake, API roles still see nothing.
--
-- What a row holds: the overall verdict and each check's status with its key numbers (rates,
-- counts, sizes, setting NAMES that are wrong): never a setting's value, never an error text.
--
-- Retention: 30 days, enforced by private.system_status() itself (a cheap indexed delete of the
-- rows past it at each recorded evaluation): at one evaluation every 5 minutes that is ~8,600 rows.
-- Not audited: each row is itself the record (an audit row per evaluation would double it).
create table private.system_status_history (
  id bigint generated always as identity primary key,
  checked_at timestamptz not null default now() check (isfinite(checked_at)),
  overall text not null check (overall in ('ok', 'degraded', 'down')),
  -- Who asked: the service (secret key: the scheduled evaluation, the ops CLI) or a tenant admin.
  caller text not null check (caller in ('service', 'admin')),
  -- Whether this evaluation also evaluated the alerts (the scheduled POST).
  evaluated_alerts boolean not null default false,
  -- {"<check>": {"status": "ok" | "fail" | "unknown", …key numbers}, …}
  checks jsonb not null check (jsonb_typeof(checks) = 'object'),
  db_size_bytes bigint check (db_size_bytes >= 0),
  db_size_quota_bytes bigint check (db_size_quota_bytes > 0)
);

-- Retention deletes by checked_at; the dashboard's history reads it by checked_at.
create index system_status_history_checked_at_idx on private.system_status_history (checked_at);

comment on table private.system_status_history is 'One row per authorised evaluation of the system status (system-status function): overall verdict and each check''s status and numbers, no secrets. Kept 30 days (private.system_status() deletes older rows).';
comment on column private.system_status_history.id is 'Row identifier.';
comment on column private.system_status_history.checked_at is 'When the status was evaluated.';
comment on column private.system_status_history.overall is 'ok, degraded (a check failed) or down (never recorded in practice: the database was unreachable).';
comment on column private.system_status_history.caller is 'service (secret API key: scheduled evaluation, ops CLI) or admin (a tenant owner/admin''s session).';
comment on column private.system_status_history.evaluated_alerts is 'True when this evaluation also evaluated the alerts (the scheduled POST).';
comment on column private.system_status_history.checks is 'Per check: {"status": ok | fail | unknown, …its numbers}; setting names only, never values.';
comment on column private.system_status_history.db_size_bytes is 'Size of all databases of the cluster (the hosted plan''s quota counts them all).';
comment on column private.system_status_history.db_size_quota_bytes is 'DB_SIZE_QUOTA_MB of the function at that time, in bytes.';

alter table private.system_status_history enable row level security;
revoke all on private.system_status_history from public, anon, authenticated, service_role;
revoke all on sequence private.system_status_history_id_seq from public, anon, authenticated, service_role;
