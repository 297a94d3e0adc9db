-- Idempotency keys of send-sms requests (the Idempotency-Key header): a retried request returns
-- the first result instead of sending a second SMS. Used only by private.reserve_outbound_sms.
--
-- A small table rather than a column on sms_alerts, because what must be replayed is the whole
-- first answer of a request: a site alert reserves N rows under one key, and the recipients it
-- skipped (no consent, unverified) have no sms_alerts row at all, yet a retry must report them
-- the same way instead of re-deciding (a worker who consented in between would otherwise get an
-- alert the first answer said was not sent). It also keeps the public API types unchanged.
--
-- In `private` (not exposed by the Data API): only the SECURITY DEFINER reserve function reads and
-- writes it, so no API role has any privilege on it and it needs no RLS policy. Keys are scoped
-- per tenant ('service' for the operator's test SMS to a bare number), so two tenants' identical
-- keys never collide, and a key only matters for 24 hours (as Stripe's): the reserve function
-- deletes expired keys as it goes (index on created_at), so the table stays small.
create table private.sms_send_requests (
  scope text not null,
  idempotency_key text not null check (length(idempotency_key) between 1 and 255),
  -- The tenant's keys go with it.
  tenant_id uuid references public.tenants (id) on delete cascade,
  -- md5 of the request without its key: the same key with another request is refused.
  request_hash text not null,
  -- The first answer: { messages: [{ alert_id, worker_id, tenant_id, to, body, preferred_language }],
  -- skipped: [{ worker_id, reasons }] }; messages are refreshed from sms_alerts on replay.
  result jsonb,
  created_at timestamptz not null default now(),
  primary key (scope, idempotency_key)
);
create index sms_send_requests_created_at_idx on private.sms_send_requests (created_at);
create index sms_send_requests_tenant_id_idx on private.sms_send_requests (tenant_id);

comment on table private.sms_send_requests is 'Idempotency keys of send-sms requests and their first result, kept 24 hours; used by private.reserve_outbound_sms only.';

revoke all on private.sms_send_requests from public, anon, authenticated, service_role;
