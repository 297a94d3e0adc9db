-- Workers who receive safety SMS alerts. The phone number is the SMS routing key: unique per
-- tenant (the same person may work for two client companies).
create table public.workers (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  site_id uuid,
  full_name text not null check (length(btrim(full_name)) between 1 and 200),
  phone text not null constraint workers_phone_e164 check (phone ~ '^\+[1-9][0-9]{7,14}$'),
  phone_verified boolean not null default false,
  -- Opt-in by default false: alerts go out only after explicit consent (STOP/ARRÊT turns it off).
  sms_consent boolean not null default false,
  preferred_language text not null default 'fr' check (preferred_language in ('fr', 'en')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint workers_tenant_phone_key unique (tenant_id, phone),
  -- Same-tenant site only; deleting the site un-assigns the worker (PG15 column list keeps tenant_id).
  constraint workers_site_fkey foreign key (tenant_id, site_id)
    references public.sites (tenant_id, id) on delete set null (site_id)
);

create index workers_tenant_id_site_id_idx on public.workers (tenant_id, site_id);
-- Inbound SMS (STOP/START) are matched by phone across tenants.
create index workers_phone_idx on public.workers (phone);

comment on table public.workers is 'Workers of a tenant who receive safety SMS alerts; consent and phone verification live here.';
comment on column public.workers.id is 'Worker identifier.';
comment on column public.workers.tenant_id is 'Employer (tenant).';
comment on column public.workers.site_id is 'Site the worker is assigned to, if any (same tenant).';
comment on column public.workers.full_name is 'Worker''s full name.';
comment on column public.workers.phone is 'Mobile number in E.164 (e.g. +15145550101), unique within the tenant.';
comment on column public.workers.phone_verified is 'True once the worker confirmed ownership of the number.';
comment on column public.workers.sms_consent is 'Current SMS consent; false after STOP/ARRÊT, true after START. History in sms_consent_events.';
comment on column public.workers.preferred_language is 'Language of the messages sent to the worker: fr or en.';
comment on column public.workers.created_at is 'When the worker was created.';
comment on column public.workers.updated_at is 'Last change to the row (set by trigger).';

create trigger set_updated_at before update on public.workers
  for each row execute function private.set_updated_at();

alter table public.workers enable row level security;
