-- pgTAP test support: schema `tests`, loaded by scripts/test.ts before pg_prove runs the files of
-- supabase/tests (folders starting with "_" are support, never run as tests). Never a migration:
-- it exists only in test databases. Idempotent, so it can be loaded again by hand:
--   psql "$DB_URL" -f supabase/tests/_helpers/pgtap_helpers.sql && pg_prove -d "$DB_URL" supabase/tests/x.sql
--
-- Works when `postgres` is not a superuser (as on hosted Supabase): impersonation is SET LOCAL ROLE
-- to a role postgres is a member of (anon, authenticated, service_role), and the fixture creators
-- are plain inserts, checked against the caller's privileges like the test's own statements.
-- Every setting is transaction-local (set_config(..., true)): it ends with the test's rollback.
--
-- Test files impersonate only through these. The raw form (set_config('request.jwt.claims', ...)
-- and SET LOCAL ROLE) stays only where a test needs what these cannot express (claims that do not
-- match the role, a JWT on a direct connection, the claim mechanics themselves), with a one-line
-- comment why; foundation_auth_claims.sql also checks that these helpers set what auth.* reads.
--
-- Every function pins search_path to '' (names are schema-qualified); a SET LOCAL of another
-- setting (role, request.jwt.claims) inside such a function still outlives the call.

set client_min_messages = warning;  -- "schema tests already exists" on a reload is not news
create schema if not exists tests;
comment on schema tests is 'pgTAP helpers (supabase/tests/_helpers); exists in test databases only.';
-- The impersonation helpers are called while the test is anon/authenticated/service_role
-- (switching user, or going back to postgres), so those roles need to reach them.
grant usage on schema tests to anon, authenticated, service_role;

-- ---------------------------------------------------------------------------------------------
-- Who the test is: what PostgREST does per request (SET LOCAL ROLE + request.jwt.claims)
-- ---------------------------------------------------------------------------------------------

-- Acts as a signed-in user: role authenticated and the claims GoTrue puts in that user's access
-- token (sub, role, aud, email, phone, metadata, aal, amr, session_id, is_anonymous). The user
-- must exist in auth.users, as GoTrue only signs tokens for existing users.
create or replace function tests.authenticate_as(user_id uuid)
returns void
language plpgsql
set search_path = ''
as $$
declare
  claims jsonb;
begin
  -- Read auth.users as the session role, whoever the test was impersonating before.
  perform pg_catalog.set_config('role', 'none', true);
  select pg_catalog.jsonb_build_object(
           'iss', 'http://127.0.0.1:54321/auth/v1',
           'sub', u.id,
           'aud', 'authenticated',
           'role', 'authenticated',
           'iat', pg_catalog.floor(extract(epoch from pg_catalog.now())),
           'exp', pg_catalog.floor(extract(epoch from pg_catalog.now())) + 3600,
           'email', coalesce(u.email, ''),
           'phone', coalesce(u.phone, ''),
           'app_metadata', coalesce(u.raw_app_meta_data, '{"provider": "email", "providers": ["email"]}'::jsonb),
           'user_metadata', coalesce(u.raw_user_meta_data, '{}'::jsonb),
           'aal', 'aal1',
           'amr', pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
             'method', 'password', 'timestamp', pg_catalog.floor(extract(epoch from pg_catalog.now())))),
           'session_id', pg_catalog.gen_random_uuid(),
           'is_anonymous', u.is_anonymous)
    into claims
  from auth.users as u
  where u.id = user_id;
  if claims is null then
    raise exception 'tests.authenticate_as: no auth.users row with id %', user_id;
  end if;
  perform pg_catalog.set_config('request.jwt.claims', claims::text, true);
  perform pg_catalog.set_config('role', 'authenticated', true);
end
$$;

-- Acts as a request with the anon key and no session.
create or replace function tests.authenticate_as_anon()
returns void
language plpgsql
set search_path = ''
as $$
begin
  perform pg_catalog.set_config('request.jwt.claims',
    pg_catalog.jsonb_build_object('iss', 'supabase', 'role', 'anon')::text, true);
  perform pg_catalog.set_config('role', 'anon', true);
end
$$;

-- Acts as the service role (edge functions with the secret key): bypasses RLS, not privileges.
create or replace function tests.authenticate_as_service_role()
returns void
language plpgsql
set search_path = ''
as $$
begin
  perform pg_catalog.set_config('request.jwt.claims',
    pg_catalog.jsonb_build_object('iss', 'supabase', 'role', 'service_role')::text, true);
  perform pg_catalog.set_config('role', 'service_role', true);
end
$$;

-- Back to the session role (postgres) with no JWT: a direct database connection.
create or replace function tests.clear_authentication()
returns void
language plpgsql
set search_path = ''
as $$
begin
  perform pg_catalog.set_config('request.jwt.claims', '', true);
  perform pg_catalog.set_config('role', 'none', true);
end
$$;

grant execute on function tests.authenticate_as(uuid), tests.authenticate_as_anon(),
  tests.authenticate_as_service_role(), tests.clear_authentication()
  to anon, authenticated, service_role;

-- ---------------------------------------------------------------------------------------------
-- Fixtures: one row each, returning its id. Pass `id => '…'` for a fixed id the test refers to.
-- Run as the caller (normally postgres, before any authenticate_as), inside the test transaction.
-- ---------------------------------------------------------------------------------------------

-- An auth user as GoTrue creates one for an email sign-up (confirmed).
create or replace function tests.create_user(email text, id uuid default pg_catalog.gen_random_uuid())
returns uuid
language sql
set search_path = ''
as $$
  insert into auth.users (id, aud, role, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data,
                          created_at, updated_at)
  values (id, 'authenticated', 'authenticated', email, pg_catalog.now(),
          '{"provider": "email", "providers": ["email"]}', '{}', pg_catalog.now(), pg_catalog.now())
  returning id;
$$;

create or replace function tests.create_tenant(name text, id uuid default pg_catalog.gen_random_uuid())
returns uuid
language sql
set search_path = ''
as $$
  insert into public.tenants (id, name) values (id, name) returning id;
$$;

-- A user who belongs to a tenant with a role (owner, admin, member): the auth user and the
-- membership.
create or replace function tests.create_member(
  tenant_id uuid, role text, email text, id uuid default pg_catalog.gen_random_uuid()
)
returns uuid
language sql
set search_path = ''
as $$
  select tests.create_user(email, id);
  insert into public.tenant_members (tenant_id, user_id, role) values (tenant_id, id, role) returning user_id;
$$;

create or replace function tests.create_site(
  tenant_id uuid, name text, id uuid default pg_catalog.gen_random_uuid()
)
returns uuid
language sql
set search_path = ''
as $$
  insert into public.sites (id, tenant_id, name) values (id, tenant_id, name) returning id;
$$;

create or replace function tests.create_worker(
  tenant_id uuid, full_name text, phone text, site_id uuid default null,
  id uuid default pg_catalog.gen_random_uuid()
)
returns uuid
language sql
set search_path = ''
as $$
  insert into public.workers (id, tenant_id, site_id, full_name, phone)
  values (id, tenant_id, site_id, full_name, phone) returning id;
$$;
