-- Client companies. Every business row hangs off a tenant; RLS isolates tenants from each other.
create table public.tenants (
  id uuid primary key default gen_random_uuid(),
  name text not null check (length(btrim(name)) between 1 and 200),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

comment on table public.tenants is 'Client companies (tenants) of C-Secur360. Every business row belongs to one tenant.';
comment on column public.tenants.id is 'Tenant identifier.';
comment on column public.tenants.name is 'Legal or trading name of the client company, e.g. "Construction Boréal inc.".';
comment on column public.tenants.created_at is 'When the tenant was created.';
comment on column public.tenants.updated_at is 'Last change to the row (set by trigger).';

create trigger set_updated_at before update on public.tenants
  for each row execute function private.set_updated_at();

-- RLS from the start: until policies exist (20261125010500) nobody but service_role sees a row.
alter table public.tenants enable row level security;
