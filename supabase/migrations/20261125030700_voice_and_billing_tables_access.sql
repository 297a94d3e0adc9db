-- Access to voice_calls and the billing tables. They are written only by edge functions
-- (service_role, which bypasses RLS) or a direct database connection; tenant owners/admins may
-- read their own rows; plain members and anon see nothing. billing_events is server-side only.
-- See 20261125010600_core_tables_access.sql for why anon and TRUNCATE are revoked explicitly.

revoke all on public.voice_calls, public.customers, public.subscriptions, public.subscription_items,
  public.invoices, public.billing_events from anon;
revoke insert, update, delete, truncate, references, trigger
  on public.voice_calls, public.customers, public.subscriptions, public.subscription_items, public.invoices
  from authenticated;
-- RLS is enabled without any policy as well: nothing for anon/authenticated even if re-granted.
revoke all on public.billing_events from authenticated;

create policy voice_calls_select_admins on public.voice_calls
  for select to authenticated
  using (tenant_id in (select private.admin_tenant_ids()));

create policy customers_select_admins on public.customers
  for select to authenticated
  using (tenant_id in (select private.admin_tenant_ids()));

create policy subscriptions_select_admins on public.subscriptions
  for select to authenticated
  using (tenant_id in (select private.admin_tenant_ids()));

create policy subscription_items_select_admins on public.subscription_items
  for select to authenticated
  using (tenant_id in (select private.admin_tenant_ids()));

create policy invoices_select_admins on public.invoices
  for select to authenticated
  using (tenant_id in (select private.admin_tenant_ids()));
