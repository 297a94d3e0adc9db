-- Access to the core tables: table privileges (what a role may attempt) and RLS policies (which
-- rows). One permissive policy per (role, action), so the `multiple_permissive_policies` advisor
-- stays quiet and each rule is read in one place. service_role bypasses RLS (edge functions).
--
-- Hosted Supabase's default privileges grant ALL on new public tables to anon and authenticated.
-- anon gets nothing here (defense in depth on top of RLS). TRUNCATE is not subject to RLS, and
-- REFERENCES/TRIGGER are not needed by the API: revoke them from authenticated too.

revoke all on public.tenants, public.tenant_members, public.sites, public.workers from anon;
revoke truncate, references, trigger
  on public.tenants, public.tenant_members, public.sites, public.workers from authenticated;

-- tenants: members read their tenant; owners/admins rename it. Tenants are created and deleted by
-- the back office (service_role) only.
revoke insert, update, delete on public.tenants from authenticated;
grant update (name) on public.tenants to authenticated;

create policy tenants_select_members on public.tenants
  for select to authenticated
  using (id in (select private.member_tenant_ids()));

create policy tenants_update_admins on public.tenants
  for update to authenticated
  using (id in (select private.admin_tenant_ids()))
  with check (id in (select private.admin_tenant_ids()));

-- tenant_members: everyone sees their own memberships (the app needs its role); owners/admins see
-- and manage the members of their tenant. Owner rows are managed by owners only. Only the role
-- of an existing membership can change.
revoke update on public.tenant_members from authenticated;
grant update (role) on public.tenant_members to authenticated;

create policy tenant_members_select_self_or_admins on public.tenant_members
  for select to authenticated
  using (
    user_id = (select auth.uid())
    or tenant_id in (select private.admin_tenant_ids())
  );

create policy tenant_members_insert_admins on public.tenant_members
  for insert to authenticated
  with check (
    tenant_id in (select private.admin_tenant_ids())
    and (role <> 'owner' or tenant_id in (select private.owner_tenant_ids()))
  );

create policy tenant_members_update_admins on public.tenant_members
  for update to authenticated
  using (
    tenant_id in (select private.admin_tenant_ids())
    and (role <> 'owner' or tenant_id in (select private.owner_tenant_ids()))
  )
  with check (
    tenant_id in (select private.admin_tenant_ids())
    and (role <> 'owner' or tenant_id in (select private.owner_tenant_ids()))
  );

create policy tenant_members_delete_admins on public.tenant_members
  for delete to authenticated
  using (
    tenant_id in (select private.admin_tenant_ids())
    and (role <> 'owner' or tenant_id in (select private.owner_tenant_ids()))
  );

-- sites: members read their tenant's sites; owners/admins have full CRUD.
create policy sites_select_members on public.sites
  for select to authenticated
  using (tenant_id in (select private.member_tenant_ids()));

create policy sites_insert_admins on public.sites
  for insert to authenticated
  with check (tenant_id in (select private.admin_tenant_ids()));

create policy sites_update_admins on public.sites
  for update to authenticated
  using (tenant_id in (select private.admin_tenant_ids()))
  with check (tenant_id in (select private.admin_tenant_ids()));

create policy sites_delete_admins on public.sites
  for delete to authenticated
  using (tenant_id in (select private.admin_tenant_ids()));

-- workers: members read their tenant's workers; owners/admins have full CRUD.
create policy workers_select_members on public.workers
  for select to authenticated
  using (tenant_id in (select private.member_tenant_ids()));

create policy workers_insert_admins on public.workers
  for insert to authenticated
  with check (tenant_id in (select private.admin_tenant_ids()));

create policy workers_update_admins on public.workers
  for update to authenticated
  using (tenant_id in (select private.admin_tenant_ids()))
  with check (tenant_id in (select private.admin_tenant_ids()));

create policy workers_delete_admins on public.workers
  for delete to authenticated
  using (tenant_id in (select private.admin_tenant_ids()));
