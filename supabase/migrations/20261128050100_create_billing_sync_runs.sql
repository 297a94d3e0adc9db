-- billing-sync's runs: the checkpoint that lets a reconciliation stop and resume (issue 15).
--
-- A run walks Stripe's lists in phases: undelivered events (full runs only), customers,
-- subscriptions, invoices, then the missing-row check. After every page it has applied, the same
-- transaction stores the last object id of that page (`cursor`, Stripe's starting_after), so an
-- invocation that stops (its time budget before the platform's wall-clock limit, a rate limit that
-- did not clear, a crash) leaves a run that the next invocation resumes at the next page instead of
-- starting over.
--
-- One invocation at a time per run: the invocation working on a run holds a lease (lease_id,
-- lease_until), taken and checked in SQL with the row locked; every page it applies checks the lease
-- and extends it. A second call while the lease is live is refused (409); a lease left by an
-- invocation the platform killed expires and the next call takes the run over. At most one open
-- (pending, running, incomplete) full run, and one per tenant for tenant runs: unique indexes.
--
-- In `private` (not exposed by the Data API), like private.sms_send_requests: only billing-sync's SQL
-- functions read and write it, as postgres. No API role has a privilege on it, so it needs no RLS
-- policy. Not under the row audit trigger: a run is updated after every page (dozens of updates a
-- day carrying nothing a person reviews); what the run did is audited once per invocation by its
-- drift report (system_audit_logs, area billing, action billing_sync), and each billing row it
-- changes is audited by the billing tables' own trigger.
create table private.billing_sync_runs (
  id uuid primary key default gen_random_uuid(),
  -- full: the whole account; tenant: one tenant's Stripe customer (an admin's request).
  scope text not null check (scope in ('full', 'tenant')),
  tenant_id uuid references public.tenants (id) on delete cascade,
  stripe_customer_id text check (stripe_customer_id ~ '^cus_[0-9A-Za-z]+$'),
  trigger text not null check (trigger in ('cron', 'service', 'admin')),
  -- Who asked: pg_cron, service:<secret key name>, user:<uuid>.
  requested_by text not null check (length(requested_by) between 1 and 200),
  -- Cron runs: the America/Montreal day the 04:00 schedule started it for.
  local_date date,
  -- The mode of the API key the run lists with (sk_test_/sk_live_); null until first claimed.
  livemode boolean,
  status text not null default 'pending'
    check (status in ('pending', 'running', 'incomplete', 'complete', 'failed', 'abandoned')),
  phase text not null default 'events'
    check (phase in ('events', 'customers', 'subscriptions', 'invoices', 'missing', 'done')),
  -- Last Stripe id applied in the current phase's list (starting_after of the next page).
  cursor text check (cursor ~ '^[a-z]+_[0-9A-Za-z]+$'),
  lease_id uuid,
  lease_until timestamptz,
  -- When the schedule last asked the function (net.http_post) to work on this run.
  requested_at timestamptz,
  invocations integer not null default 0 check (invocations >= 0),
  pages integer not null default 0 check (pages >= 0),
  api_calls integer not null default 0 check (api_calls >= 0),
  rate_limited integer not null default 0 check (rate_limited >= 0),
  events_seen integer not null default 0 check (events_seen >= 0),
  events_replayed integer not null default 0 check (events_replayed >= 0),
  -- Per table (customers, subscriptions, invoices): seen (listed by Stripe), created, changed
  -- (repaired from Stripe's copy), unchanged, stale (a newer webhook got there first), skipped
  -- (not tied to a tenant), failed, missing (ours, not listed by Stripe).
  drift jsonb not null default (
    '{"customers": {"seen": 0, "created": 0, "changed": 0, "unchanged": 0, "stale": 0, "skipped": 0, "failed": 0, "missing": 0},'
    ' "subscriptions": {"seen": 0, "created": 0, "changed": 0, "unchanged": 0, "stale": 0, "skipped": 0, "failed": 0, "missing": 0},'
    ' "invoices": {"seen": 0, "created": 0, "changed": 0, "unchanged": 0, "stale": 0, "skipped": 0, "failed": 0, "missing": 0}}'
  )::jsonb check (jsonb_typeof(drift) = 'object'),
  -- Objects that could not be applied (first 20): [{type, id, error}].
  failures jsonb not null default '[]'::jsonb check (jsonb_typeof(failures) = 'array'),
  -- Why the last invocation stopped before the end: time_budget, page_budget, rate_limited,
  -- stripe_unavailable, lease_expired.
  stop_reason text check (stop_reason ~ '^[a-z_]{1,40}$'),
  error text check (length(error) <= 2000),
  started_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  finished_at timestamptz,
  constraint billing_sync_runs_scope_tenant check ((scope = 'tenant') = (tenant_id is not null)),
  constraint billing_sync_runs_tenant_customer check ((scope = 'tenant') = (stripe_customer_id is not null)),
  constraint billing_sync_runs_lease check ((lease_id is null) = (lease_until is null)),
  constraint billing_sync_runs_finished check (
    (status in ('complete', 'failed', 'abandoned')) = (finished_at is not null))
);

-- At most one open run of the whole account, and one per tenant.
create unique index billing_sync_runs_one_open_full on private.billing_sync_runs (scope)
  where scope = 'full' and status in ('pending', 'running', 'incomplete');
create unique index billing_sync_runs_one_open_per_tenant on private.billing_sync_runs (tenant_id)
  where scope = 'tenant' and status in ('pending', 'running', 'incomplete');
-- The latest runs of a tenant (admin cooldown) and old runs (cleanup).
create index billing_sync_runs_tenant_id_started_at_idx on private.billing_sync_runs (tenant_id, started_at);
create index billing_sync_runs_started_at_idx on private.billing_sync_runs (started_at);

create trigger set_updated_at before update on private.billing_sync_runs
  for each row execute function private.set_updated_at();

comment on table private.billing_sync_runs is
  'billing-sync runs: phase and cursor (checkpoint after each page), the invocation''s lease, counters and drift; kept 90 days.';

-- The Stripe ids a run has listed, per object type: after the last list, rows of ours that are not
-- here (and existed before the run started) are the missing ones. Deleted with the run's finish.
create table private.billing_sync_seen (
  run_id uuid not null references private.billing_sync_runs (id) on delete cascade,
  object_type text not null check (object_type in ('customer', 'subscription', 'invoice')),
  stripe_id text not null check (length(stripe_id) <= 255),
  primary key (run_id, object_type, stripe_id)
);

comment on table private.billing_sync_seen is
  'Stripe ids listed by an unfinished billing-sync run (for the missing-row check); emptied when the run finishes.';

revoke all on private.billing_sync_runs, private.billing_sync_seen from public, anon, authenticated, service_role;
