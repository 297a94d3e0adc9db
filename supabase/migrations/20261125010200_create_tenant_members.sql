-- Which auth user belongs to which tenant, and with which role. The RLS helpers read this table.
create table public.tenant_members (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  role text not null default 'member' check (role in ('owner', 'admin', 'member')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, user_id)
);

-- The RLS helpers look memberships up by user; also covers the FK to auth.users.
create index tenant_members_user_id_role_idx on public.tenant_members (user_id, role);

comment on table public.tenant_members is 'Membership of an auth user in a tenant, with the role that drives RLS (owner/admin manage, member reads).';
comment on column public.tenant_members.tenant_id is 'Tenant the user belongs to.';
comment on column public.tenant_members.user_id is 'Auth user (auth.users.id).';
comment on column public.tenant_members.role is 'owner or admin: manage the tenant''s data and members; member: read the tenant, its sites and workers.';
comment on column public.tenant_members.created_at is 'When the membership was created.';
comment on column public.tenant_members.updated_at is 'Last change to the row (set by trigger).';

create trigger set_updated_at before update on public.tenant_members
  for each row execute function private.set_updated_at();

alter table public.tenant_members enable row level security;
