-- The three log tables of the data contract (docs/data-contract.md): sms_alerts,
-- sms_consent_events, system_audit_logs. Names and columns follow the contract exactly.
--
-- Access model (same for the three tables):
--   * anon: nothing (privileges revoked on top of RLS).
--   * authenticated: SELECT only, and RLS lets owners/admins of a tenant read that tenant's rows.
--     Plain members read nothing: these rows hold coworkers' phone numbers and message texts,
--     personal information under Quebec's Loi 25, and the runbook says "RLS : admins du tenant
--     uniquement". The app shows members their own alerts through the business tables, not here.
--   * service_role (edge functions): writes what the functions need; bypasses RLS.
--   * retention (20261125020200) deletes/blanks old rows through SECURITY DEFINER functions.
-- One permissive policy per (role, action); every FK and policy column is indexed.

-- ---------------------------------------------------------------------------------------------
-- sms_alerts: every SMS sent to or received from a worker (Twilio), with its delivery status.
-- ---------------------------------------------------------------------------------------------
create table public.sms_alerts (
  id bigint generated always as identity primary key,
  -- ON DELETE CASCADE: a deleted client company takes its workers' messages with it (Loi 25:
  -- no personal information kept without purpose). The audit trail keeps what happened.
  tenant_id uuid references public.tenants (id) on delete cascade,
  worker_id uuid references public.workers (id) on delete set null,
  direction text not null check (direction in ('outbound', 'inbound')),
  -- Not forced to E.164: inbound messages may come from short codes or alphanumeric senders.
  from_number text not null check (length(btrim(from_number)) between 1 and 32),
  to_number text not null check (length(btrim(to_number)) between 1 and 32),
  -- Twilio accepts at most 1600 characters per message.
  body text not null check (length(body) <= 1600),
  status text not null check (status in (
    'queued', 'accepted', 'sending', 'sent', 'delivered', 'undelivered', 'failed', 'received', 'read'
  )),
  provider_message_id text unique check (provider_message_id <> ''),
  error_code integer,
  error_message text,
  -- Finite: retention walks created_at ranges from the oldest row.
  created_at timestamptz not null default now() check (isfinite(created_at)),
  updated_at timestamptz not null default now(),
  sent_at timestamptz,
  delivered_at timestamptz
);

-- Retention (delete rows older than 180 days) walks this index by range.
create index sms_alerts_created_at_idx on public.sms_alerts (created_at);
-- RLS (tenant_id) and the admin screen's "latest messages of my tenant"; covers the tenant FK.
create index sms_alerts_tenant_id_created_at_idx on public.sms_alerts (tenant_id, created_at desc);
-- Covers the worker FK (ON DELETE SET NULL scans by worker_id) and a worker's history.
create index sms_alerts_worker_id_idx on public.sms_alerts (worker_id);

create trigger set_updated_at before update on public.sms_alerts
  for each row execute function private.set_updated_at();

comment on table public.sms_alerts is 'SMS sent to / received from workers through Twilio, with delivery status. Rows older than 180 days are deleted by private.purge_expired_sms().';
comment on column public.sms_alerts.id is 'Row identifier.';
comment on column public.sms_alerts.tenant_id is 'Tenant the message belongs to; null for an inbound message from an unknown number.';
comment on column public.sms_alerts.worker_id is 'Worker who received or sent the message, if known; set to null when the worker is deleted.';
comment on column public.sms_alerts.direction is 'outbound (we sent it) or inbound (a worker sent it to our Twilio number).';
comment on column public.sms_alerts.from_number is 'Sender number (E.164 for phones, e.g. +15145550101; may be a short code for inbound).';
comment on column public.sms_alerts.to_number is 'Recipient number (E.164 for phones).';
comment on column public.sms_alerts.body is 'Message text, at most 1600 characters.';
comment on column public.sms_alerts.status is 'Twilio status: queued, accepted, sending, sent, delivered, undelivered, failed, received (inbound), read.';
comment on column public.sms_alerts.provider_message_id is 'Twilio MessageSid (SM...), unique; null until Twilio accepted the message.';
comment on column public.sms_alerts.error_code is 'Twilio error code when sending failed (e.g. 21610 = recipient unsubscribed).';
comment on column public.sms_alerts.error_message is 'Provider error message when sending failed.';
comment on column public.sms_alerts.created_at is 'When the row was created; drives the 180-day retention.';
comment on column public.sms_alerts.updated_at is 'Last change to the row (set by trigger), e.g. a status callback.';
comment on column public.sms_alerts.sent_at is 'When Twilio reported the message sent.';
comment on column public.sms_alerts.delivered_at is 'When Twilio reported the message delivered.';

-- ---------------------------------------------------------------------------------------------
-- sms_consent_events: proof of every consent change (STOP/ARRÊT, START, admin, API, carrier).
-- ---------------------------------------------------------------------------------------------
create table public.sms_consent_events (
  id bigint generated always as identity primary key,
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  worker_id uuid references public.workers (id) on delete set null,
  phone text not null check (phone ~ '^\+[1-9][0-9]{7,14}$'),
  new_consent boolean not null,
  source text not null check (source in ('keyword', 'admin', 'api', 'carrier_error')),
  keyword text check (length(keyword) <= 64),
  message_body text check (length(message_body) <= 1600),
  provider_message_id text,
  actor text,
  created_at timestamptz not null default now() check (isfinite(created_at)),
  -- A keyword event is the proof that the worker texted STOP/START: the keyword is required.
  constraint sms_consent_events_keyword_required check (source <> 'keyword' or keyword is not null)
);

create index sms_consent_events_tenant_id_created_at_idx
  on public.sms_consent_events (tenant_id, created_at desc);
create index sms_consent_events_worker_id_idx on public.sms_consent_events (worker_id);
-- "What is the latest consent of this number?" (inbound STOP/START handling, support).
create index sms_consent_events_phone_created_at_idx
  on public.sms_consent_events (phone, created_at desc);
-- Retention blanks message_body after 180 days. Partial: a blanked row leaves the index, so each
-- purge batch starts at the first body still to blank instead of re-reading blanked rows.
create index sms_consent_events_body_created_at_idx
  on public.sms_consent_events (created_at) where message_body is not null;

comment on table public.sms_consent_events is 'Proof of each SMS consent change of a phone number. Kept; only message_body is blanked after 180 days by private.purge_expired_sms().';
comment on column public.sms_consent_events.id is 'Row identifier.';
comment on column public.sms_consent_events.tenant_id is 'Tenant whose worker changed consent.';
comment on column public.sms_consent_events.worker_id is 'Worker concerned, if known; set to null when the worker is deleted (the proof stays).';
comment on column public.sms_consent_events.phone is 'Phone number in E.164 whose consent changed (e.g. +15145550101).';
comment on column public.sms_consent_events.new_consent is 'Consent after the event: false after STOP/ARRÊT, true after START.';
comment on column public.sms_consent_events.source is 'keyword (worker texted a keyword), admin (changed in the back office), api, carrier_error (carrier reported the number unsubscribed/unreachable).';
comment on column public.sms_consent_events.keyword is 'Keyword received, e.g. STOP, ARRÊT, START; required when source = keyword.';
comment on column public.sms_consent_events.message_body is 'Full inbound text that carried the keyword; set to null after 180 days (the proof row stays).';
comment on column public.sms_consent_events.provider_message_id is 'Twilio MessageSid of the inbound message, when the event came from an SMS.';
comment on column public.sms_consent_events.actor is 'Who made the change: auth user id, service name, or "twilio" for keywords.';
comment on column public.sms_consent_events.created_at is 'When the consent changed; drives the 180-day blanking of message_body.';

-- ---------------------------------------------------------------------------------------------
-- system_audit_logs: the platform's audit trail. Append-only (20261125020100); rows older than
-- one year are deleted by private.purge_expired_audit_logs() only.
-- ---------------------------------------------------------------------------------------------
create table public.system_audit_logs (
  id bigint generated always as identity primary key,
  created_at timestamptz not null default now() check (isfinite(created_at)),
  area text not null check (area in (
    'stripe', 'twilio', 'vercel', 'supabase', 'dns', 'database', 'billing', 'maintenance', 'system'
  )),
  -- Open list (update_env, webhook_event, sms_send, inbound, voice_forward, insert, update,
  -- delete, sms_purge, audit_purge, ...): only the spelling is enforced.
  action text not null check (action ~ '^[a-z][a-z0-9_]{0,62}$'),
  actor text,
  -- No FK on purpose: the trail outlives the tenant it talks about.
  tenant_id uuid,
  target text,
  details jsonb not null default '{}' check (jsonb_typeof(details) = 'object')
);

-- Indexes for the operations guide's queries, verbatim:
--  1. "Erreurs des dernières 24h":
--       WHERE created_at > NOW() - INTERVAL '24 hours' AND details->>'error' IS NOT NULL
--       ORDER BY created_at DESC
--     -> partial index with exactly that predicate: only failures are in it, read newest first.
create index system_audit_logs_errors_created_at_idx
  on public.system_audit_logs (created_at) where (details ->> 'error') is not null;
--  2. "SMS envoyés aujourd'hui":
--       WHERE area = 'twilio' AND action = 'sms_send' AND created_at::date = CURRENT_DATE
--     created_at::date depends on the session TimeZone, so it is not IMMUTABLE and cannot be
--     indexed; the planner uses this index on (area, action) and filters created_at::date inside
--     the index (index-only scan, no heap access; measured 58 ms warm / 88 ms cold with 2 M audit
--     rows of which 400 k twilio/sms_send over the retained year; a dedicated partial index only
--     brought it to 40 ms, not worth another index). Also serves the retention wrapper's "already
--     ran today?" lookup (area 'maintenance', action 'sms_purge'/'audit_purge').
create index system_audit_logs_area_action_created_at_idx
  on public.system_audit_logs (area, action, created_at);
--  3. "Vérifier logs récents":
--       WHERE area = 'twilio' AND action LIKE 'sms_%' ORDER BY created_at DESC LIMIT 10
--     -> walk the area's entries newest first and stop after 10 matches (LIKE cannot use a
--     btree prefix range in a non-C collation).
create index system_audit_logs_area_created_at_idx
  on public.system_audit_logs (area, created_at);
-- Retention (rows older than one year) walks this index by range.
create index system_audit_logs_created_at_idx on public.system_audit_logs (created_at);
-- RLS (tenant_id) and "history of a tenant".
create index system_audit_logs_tenant_id_created_at_idx
  on public.system_audit_logs (tenant_id, created_at);

comment on table public.system_audit_logs is 'Audit trail of the platform (provider calls, webhooks, data changes, maintenance). Append-only: nobody can update, delete or truncate it; private.purge_expired_audit_logs() deletes rows older than one year.';
comment on column public.system_audit_logs.id is 'Row identifier.';
comment on column public.system_audit_logs.created_at is 'When the event was recorded; drives the one-year retention.';
comment on column public.system_audit_logs.area is 'Subsystem: stripe, twilio, vercel, supabase, dns, database, billing, maintenance, system.';
comment on column public.system_audit_logs.action is 'What happened, snake_case: update_env, webhook_event, sms_send, inbound, voice_forward, insert, update, delete, sms_purge, audit_purge, ...';
comment on column public.system_audit_logs.actor is 'Who did it: JWT sub (auth user id), else the API role, else the database role.';
comment on column public.system_audit_logs.tenant_id is 'Tenant concerned, if any. No foreign key: the trail outlives deleted tenants.';
comment on column public.system_audit_logs.target is 'Object concerned, e.g. ''workers:<uuid>'', a Twilio MessageSid or a Stripe event id.';
comment on column public.system_audit_logs.details is 'Event details (JSON object); details->>''error'' is set when something failed.';

-- ---------------------------------------------------------------------------------------------
-- Privileges and RLS
-- ---------------------------------------------------------------------------------------------
alter table public.sms_alerts enable row level security;
alter table public.sms_consent_events enable row level security;
alter table public.system_audit_logs enable row level security;

-- Hosted Supabase's default privileges grant ALL on new public tables to anon, authenticated and
-- service_role. Start from nothing and grant what each role needs.
revoke all on public.sms_alerts, public.sms_consent_events, public.system_audit_logs
  from public, anon, authenticated, service_role;

grant select on public.sms_alerts, public.sms_consent_events, public.system_audit_logs
  to authenticated;

-- Edge functions: log sent/received SMS and update their status from Twilio callbacks.
grant select, insert, update on public.sms_alerts to service_role;
-- Consent proofs are written once; only the retention function blanks message_body.
grant select, insert on public.sms_consent_events to service_role;
-- The audit trail is append-only (20261125020100).
grant select, insert on public.system_audit_logs to service_role;

create policy sms_alerts_select_admins on public.sms_alerts
  for select to authenticated
  using (tenant_id in (select private.admin_tenant_ids()));

create policy sms_consent_events_select_admins on public.sms_consent_events
  for select to authenticated
  using (tenant_id in (select private.admin_tenant_ids()));

create policy system_audit_logs_select_admins on public.system_audit_logs
  for select to authenticated
  using (tenant_id in (select private.admin_tenant_ids()));
