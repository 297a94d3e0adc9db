-- RLS helpers of the data contract (docs/data-contract.md). SECURITY DEFINER so that policies on
-- tenant_members itself can call them without recursing into tenant_members' own policies.
-- Policies call them as `tenant_id in (select private.admin_tenant_ids())`: the sub-select is
-- evaluated once per statement (initPlan), not once per row.

create function private.member_tenant_ids()
returns setof uuid
language sql
stable
security definer
set search_path = ''
as $$
  select tm.tenant_id
  from public.tenant_members as tm
  where tm.user_id = (select auth.uid())
$$;
comment on function private.member_tenant_ids() is 'Tenants where the current user (auth.uid()) is a member, any role.';

create function private.admin_tenant_ids()
returns setof uuid
language sql
stable
security definer
set search_path = ''
as $$
  select tm.tenant_id
  from public.tenant_members as tm
  where tm.user_id = (select auth.uid())
    and tm.role in ('owner', 'admin')
$$;
comment on function private.admin_tenant_ids() is 'Tenants where the current user (auth.uid()) is owner or admin.';

-- Not part of the contract: only owners may create, change or remove an owner membership, so an
-- admin cannot promote themselves to owner or remove the owner.
create function private.owner_tenant_ids()
returns setof uuid
language sql
stable
security definer
set search_path = ''
as $$
  select tm.tenant_id
  from public.tenant_members as tm
  where tm.user_id = (select auth.uid())
    and tm.role = 'owner'
$$;
comment on function private.owner_tenant_ids() is 'Tenants where the current user (auth.uid()) is owner.';

revoke all on function private.member_tenant_ids() from public, anon;
revoke all on function private.admin_tenant_ids() from public, anon;
revoke all on function private.owner_tenant_ids() from public, anon;
grant execute on function private.member_tenant_ids() to authenticated, service_role;
grant execute on function private.admin_tenant_ids() to authenticated, service_role;
grant execute on function private.owner_tenant_ids() to authenticated, service_role;
