-- The database refuses a site beyond the tenant's entitlement (private.site_entitlement), whoever
-- inserts it: the web app through the Data API, an edge function, the service role, psql.
--
-- The error: SQLSTATE PT402, message "site limit reached: …", with DETAIL (the entitlement) and
-- HINT (what to do), and the constraint name `sites_within_entitlement`. PT402 because the Data
-- API (PostgREST) answers a `PTxyz` SQLSTATE with HTTP status xyz: the web app gets a 402 Payment
-- Required with {code: "PT402", message, details, hint} and can offer the add-on; a function or
-- script matches the code (postgres.js: error.code === 'PT402').
--
-- AFTER INSERT (and AFTER UPDATE OF tenant_id, moving a site), not BEFORE: AFTER row triggers
-- fire only for rows that passed the privilege and RLS checks, so a caller who may not create
-- the site (a plain member, an admin of another tenant) still gets the RLS error (42501) and
-- never learns another tenant's limit. At that point the new row is in the count:
-- refused when used > allowed. A multi-row insert is refused as a whole.
--
-- Concurrency: two transactions each inserting the tenant's last allowed site must not both pass.
-- The trigger first locks the tenant's row (FOR NO KEY UPDATE: it does not block the FK checks
-- of workers/sites, which take KEY SHARE), then counts: the second transaction waits for the
-- first to end and, under READ COMMITTED (every API and function path), counts in a fresh
-- snapshot that includes the first one's site. Under SERIALIZABLE, PostgreSQL aborts one of the
-- two (40001). (REPEATABLE READ would count in its old snapshot: not used by this project.)
--
-- SECURITY DEFINER: the count and the entitlement must see every site and subscription of the
-- tenant, whatever the caller's RLS lets it read. It only reads, and only the tenant of the row
-- the caller has just been allowed to write.
--
-- A data-only restore (pg_restore --data-only) loads sites before subscriptions: use
-- --disable-triggers for it (a full restore creates the triggers after the data).
create function private.enforce_site_entitlement()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_allowed integer;
  v_additional integer;
  v_status text;
  v_used integer;
begin
  if tg_op = 'UPDATE' and new.tenant_id is not distinct from old.tenant_id then
    return null;
  end if;

  perform from public.tenants as t where t.id = new.tenant_id for no key update;

  select e.allowed_sites, e.additional_sites, e.subscription_status
    into v_allowed, v_additional, v_status
    from private.site_entitlement(new.tenant_id) as e;
  select count(*) into v_used from public.sites as s where s.tenant_id = new.tenant_id;

  if v_used > v_allowed then
    raise exception 'site limit reached: this tenant may have % site(s) and this would make %', v_allowed, v_used
      using errcode = 'PT402',
            detail = pg_catalog.format(
              'allowed_sites = 1 included + %s additional (subscription: %s); tenant %s',
              v_additional, coalesce(v_status, 'none'), new.tenant_id),
            hint = 'Add "Site additionnel" to the subscription (billing portal or checkout), or delete a site.',
            schema = 'public',
            table = 'sites',
            constraint = 'sites_within_entitlement';
  end if;
  return null;
end
$$;

comment on function private.enforce_site_entitlement() is
  'AFTER INSERT/UPDATE OF tenant_id trigger on sites: refuses (PT402) a site beyond private.site_entitlement, the tenant row locked.';

revoke all on function private.enforce_site_entitlement() from public, anon, authenticated, service_role;

create trigger enforce_site_entitlement after insert or update of tenant_id on public.sites
  for each row execute function private.enforce_site_entitlement();
