-- Inbound phone calls received on the Twilio number and forwarded to the on-call mobile
-- (/api/voice/inbound). Written by the voice edge function (service_role); the tenant is known
-- only when the caller's number matches a worker, hence nullable.
create table public.voice_calls (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid references public.tenants (id) on delete set null,
  provider_call_sid text not null unique check (provider_call_sid ~ '^CA[0-9A-Za-z]{1,62}$'),
  -- Not constrained to E.164: Twilio reports withheld caller IDs as e.g. 'anonymous'.
  from_number text not null check (length(from_number) between 1 and 64),
  to_number text not null check (to_number ~ '^\+[1-9][0-9]{7,14}$'),
  forwarded_to text check (forwarded_to ~ '^\+[1-9][0-9]{7,14}$'),
  -- Twilio's CallStatus values.
  status text not null check (status in (
    'queued', 'ringing', 'in-progress', 'completed', 'busy', 'failed', 'no-answer', 'canceled'
  )),
  duration_seconds integer check (duration_seconds >= 0),
  started_at timestamptz not null default now(),
  ended_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint voice_calls_ended_after_start check (ended_at >= started_at)
);

-- FK to tenants and the RLS filter; admins list their calls newest first.
create index voice_calls_tenant_id_started_at_idx on public.voice_calls (tenant_id, started_at desc);

comment on table public.voice_calls is 'Inbound calls on the Twilio number, forwarded to the on-call mobile; one row per Twilio CallSid.';
comment on column public.voice_calls.id is 'Call identifier.';
comment on column public.voice_calls.tenant_id is 'Tenant of the caller when the number matches a worker; null for unknown callers.';
comment on column public.voice_calls.provider_call_sid is 'Twilio CallSid (CA...), unique: status callbacks update the same row.';
comment on column public.voice_calls.from_number is 'Caller number as reported by Twilio (E.164, or e.g. "anonymous").';
comment on column public.voice_calls.to_number is 'Twilio number that was called (E.164).';
comment on column public.voice_calls.forwarded_to is 'Number the call was forwarded to (E.164), null if not forwarded.';
comment on column public.voice_calls.status is 'Twilio call status: queued, ringing, in-progress, completed, busy, failed, no-answer, canceled.';
comment on column public.voice_calls.duration_seconds is 'Call duration in seconds, once the call ended.';
comment on column public.voice_calls.started_at is 'When the call reached the webhook.';
comment on column public.voice_calls.ended_at is 'When the call ended, from the status callback.';
comment on column public.voice_calls.created_at is 'When the row was created.';
comment on column public.voice_calls.updated_at is 'Last change to the row (set by trigger).';

create trigger set_updated_at before update on public.voice_calls
  for each row execute function private.set_updated_at();

alter table public.voice_calls enable row level security;
