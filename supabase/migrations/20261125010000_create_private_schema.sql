-- Schema `private`: helpers used by RLS policies and triggers. It is NOT in the API's exposed
-- schemas (config.toml [api].schemas = ["public"]), so PostgREST never serves these functions.
-- `authenticated` needs USAGE because policy expressions run as the querying role and call
-- private.member_tenant_ids() / private.admin_tenant_ids().
create schema if not exists private;
comment on schema private is 'Internal helpers for RLS policies and triggers; not exposed through the API.';

revoke all on schema private from public;
grant usage on schema private to authenticated, service_role;

-- Keeps updated_at honest whatever client writes the row.
create function private.set_updated_at()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end
$$;
comment on function private.set_updated_at() is 'BEFORE UPDATE trigger: sets updated_at to now().';

-- Trigger functions run without an EXECUTE check at fire time: nobody needs to call this directly.
revoke all on function private.set_updated_at() from public, anon, authenticated;
