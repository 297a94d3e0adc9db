-- Work sites of a tenant (construction sites, plants, ...). Workers may be assigned to one.
create table public.sites (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  name text not null check (length(btrim(name)) between 1 and 200),
  address text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (tenant_id, name),
  -- Target of workers' composite FK (tenant_id, site_id): a worker can only be placed on a site
  -- of its own tenant (FK checks bypass RLS, so the FK has to carry that rule).
  unique (tenant_id, id)
);

comment on table public.sites is 'Work sites of a tenant. Billing counts sites beyond the first as add-ons.';
comment on column public.sites.id is 'Site identifier.';
comment on column public.sites.tenant_id is 'Tenant owning the site.';
comment on column public.sites.name is 'Site name, unique within the tenant.';
comment on column public.sites.address is 'Postal address of the site (free text).';
comment on column public.sites.created_at is 'When the site was created.';
comment on column public.sites.updated_at is 'Last change to the row (set by trigger).';

create trigger set_updated_at before update on public.sites
  for each row execute function private.set_updated_at();

alter table public.sites enable row level security;
