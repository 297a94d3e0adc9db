-- Foundation: the auth.* accessors follow the request's JWT claims the way they do on Supabase,
-- and the anon role sees nothing it was not explicitly given.
--
-- PostgREST (and the local stack's functions) run each request in its own transaction and set
-- the claims with set_config('request.jwt.claims', <json>, true): local to that transaction. A
-- pgTAP file is ONE transaction, so the requests below are modelled by savepoints: a setting made
-- after a savepoint is undone by rolling back to it, exactly as a transaction's end undoes it.
-- Other files impersonate through tests.authenticate_as* (supabase/tests/_helpers); requests 1-3
-- set the claims by hand because the claim mechanics are what they test, and the last section
-- checks that the helpers produce what these accessors expect.
begin;
select plan(46);

-- ---------------------------------------------------------------------------------------------
-- No claims: nothing is derived from them
-- ---------------------------------------------------------------------------------------------
select is(nullif(current_setting('request.jwt.claims', true), ''), null, 'no claims are set when a transaction starts');
select is(auth.uid(), null, 'auth.uid() is null without claims');
select is(auth.role(), null, 'auth.role() is null without claims');
select is(auth.email(), null, 'auth.email() is null without claims');
select is(auth.jwt(), null, 'auth.jwt() is null without claims');

-- ---------------------------------------------------------------------------------------------
-- Request 1: an authenticated user's claims, local to the transaction
-- ---------------------------------------------------------------------------------------------
savepoint request_1;
-- Raw on purpose (claims of a user absent from auth.users, with phone and nested app_metadata).
select set_config('request.jwt.claims', json_build_object(
  'sub', 'f0000000-0000-4000-8000-000000000001', 'role', 'authenticated',
  'email', 'tech.one@claims.example.com', 'phone', '+15145550101',
  'app_metadata', json_build_object('provider', 'email'))::text, true);
set local role authenticated; -- as PostgREST does; the accessors are granted to this role
select is(auth.uid(), 'f0000000-0000-4000-8000-000000000001'::uuid, 'request 1: auth.uid() is the sub claim');
select is(auth.role(), 'authenticated', 'request 1: auth.role() is the role claim');
select is(auth.email(), 'tech.one@claims.example.com', 'request 1: auth.email() is the email claim');
select is(auth.jwt() ->> 'phone', '+15145550101', 'request 1: auth.jwt() holds every claim');
select is(auth.jwt() -> 'app_metadata' ->> 'provider', 'email', 'request 1: auth.jwt() keeps nested claims');
reset role;
rollback to savepoint request_1;

select is(nullif(current_setting('request.jwt.claims', true), ''), null,
  'request 1''s claims are gone once its (sub)transaction ended: is_local = true');
select is(auth.uid(), null, 'auth.uid() no longer returns request 1''s user');

-- ---------------------------------------------------------------------------------------------
-- Request 2: another user; the accessors see the new claims, not cached old ones
-- ---------------------------------------------------------------------------------------------
savepoint request_2;
select set_config('request.jwt.claims', json_build_object(
  'sub', 'f0000000-0000-4000-8000-000000000002', 'role', 'authenticated',
  'email', 'tech.two@claims.example.com')::text, true);
select is(auth.uid(), 'f0000000-0000-4000-8000-000000000002'::uuid, 'request 2: auth.uid() is the new sub');
select is(auth.email(), 'tech.two@claims.example.com', 'request 2: auth.email() is the new email');
-- Claims changed again within the same transaction (e.g. a function that switches user):
select set_config('request.jwt.claims', json_build_object('sub', 'f0000000-0000-4000-8000-000000000003',
  'role', 'service_role')::text, true);
select is(auth.uid(), 'f0000000-0000-4000-8000-000000000003'::uuid, 'the accessors re-read the claims on every call');
select is(auth.role(), 'service_role', 'auth.role() follows the latest claims');
select is(auth.email(), null, 'auth.email() is null when the claims carry no email');
rollback to savepoint request_2;

-- The legacy per-claim settings (request.jwt.claim.sub, ...) still win, as in GoTrue's definitions.
savepoint request_3;
select set_config('request.jwt.claims', json_build_object('sub', 'f0000000-0000-4000-8000-000000000004')::text, true);
select set_config('request.jwt.claim.sub', 'f0000000-0000-4000-8000-000000000005', true);
select is(auth.uid(), 'f0000000-0000-4000-8000-000000000005'::uuid, 'request.jwt.claim.sub takes precedence over request.jwt.claims');
rollback to savepoint request_3;

-- Volatility: STABLE (re-evaluated per statement), never IMMUTABLE (could be folded and cached
-- across requests in a prepared plan).
select is(
  (select array_agg(p.provolatile::text order by p.proname) from pg_proc p
    where p.pronamespace = 'auth'::regnamespace and p.proname in ('email', 'jwt', 'role', 'uid')),
  array['s', 's', 's', 's'],
  'auth.email/jwt/role/uid are STABLE');

-- ---------------------------------------------------------------------------------------------
-- anon sees no table by default
-- ---------------------------------------------------------------------------------------------
create table public.foundation_claims_probe (id int primary key, owner uuid not null);
insert into public.foundation_claims_probe values (1, 'f0000000-0000-4000-8000-000000000001'),
                                                  (2, 'f0000000-0000-4000-8000-000000000002');
alter table public.foundation_claims_probe enable row level security;

select ok(has_table_privilege('anon', 'public.foundation_claims_probe', 'select'),
  'anon is granted new public tables by default privileges (as on Supabase): RLS is what protects them');

savepoint anon_request;
select tests.authenticate_as_anon();
select is(auth.role(), 'anon', 'as anon, auth.role() is anon');
select is((select count(*) from public.foundation_claims_probe), 0::bigint,
  'anon reads no row of a table with RLS enabled and no policy');
select throws_ok($$ insert into public.foundation_claims_probe values (3, gen_random_uuid()) $$, '42501', null,
  'anon cannot insert into a table with RLS enabled and no policy');
with updated as (update public.foundation_claims_probe set owner = owner returning 1)
select is(count(*), 0::bigint, 'anon updates no row of a table with RLS enabled and no policy') from updated;
select throws_ok($$ select count(*) from auth.users $$, '42501', null, 'anon cannot read auth.users');
select throws_ok($$ select count(*) from vault.decrypted_secrets $$, '42501', null, 'anon cannot read the vault');
-- Hosted pg_net (0.12+) is granted to PUBLIC: anon may queue a request. (Rolled back with the
-- test, never sent.) What keeps the API away from it is that `net` is not an exposed schema.
select lives_ok($$ select net.http_get('http://127.0.0.1:9/') $$, 'anon may queue an HTTP request via pg_net, as on hosted Supabase');
rollback to savepoint anon_request;

select ok(not has_table_privilege('anon', 'auth.users', 'select'), 'anon has no privilege on auth.users');
select ok(not has_schema_privilege('anon', 'vault', 'usage'), 'anon has no usage on schema vault');
select ok(not has_schema_privilege('anon', 'cron', 'usage'), 'anon has no usage on schema cron');
select ok(not has_schema_privilege('anon', 'private', 'usage'), 'anon has no usage on schema private');

-- Every table the project keeps in public has RLS enabled: with the default grants above, a
-- table without RLS would be readable by anyone holding the public anon key.
select is_empty($$
  select c.relname::text from pg_class c
   where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p') and not c.relrowsecurity
$$, 'every table in public has row level security enabled');

-- ---------------------------------------------------------------------------------------------
-- The pgTAP helpers model a request the same way (role + claims, local to the transaction)
-- ---------------------------------------------------------------------------------------------
savepoint helpers;
select tests.create_user('tech.six@claims.example.com', id => 'f0000000-0000-4000-8000-000000000006');
select tests.create_user('tech.seven@claims.example.com', id => 'f0000000-0000-4000-8000-000000000007');

select tests.authenticate_as('f0000000-0000-4000-8000-000000000006');
select is(current_user::text, 'authenticated', 'tests.authenticate_as: the role is authenticated');
select is(auth.uid(), 'f0000000-0000-4000-8000-000000000006'::uuid, 'tests.authenticate_as: auth.uid() is the user');
select is(auth.role() || ' ' || auth.email() || ' ' || (auth.jwt() ->> 'aud'),
  'authenticated tech.six@claims.example.com authenticated', 'tests.authenticate_as: role, email and aud claims of the user');
select ok(auth.jwt() ?& array['iss', 'sub', 'aud', 'exp', 'iat', 'role', 'aal', 'session_id', 'is_anonymous',
                              'app_metadata', 'user_metadata'],
  'tests.authenticate_as: the claims GoTrue puts in an access token');
select tests.authenticate_as('f0000000-0000-4000-8000-000000000007');
select is(auth.uid(), 'f0000000-0000-4000-8000-000000000007'::uuid, 'tests.authenticate_as switches user while authenticated');
select throws_ok($$ select tests.authenticate_as('f0000000-0000-4000-8000-0000000000ff') $$, 'P0001',
  'tests.authenticate_as: no auth.users row with id f0000000-0000-4000-8000-0000000000ff',
  'tests.authenticate_as refuses a user absent from auth.users (GoTrue signs no token for one)');

select tests.clear_authentication();
select is(current_user::text, 'postgres', 'tests.clear_authentication: back to the session role postgres');
select is(auth.jwt(), null, 'tests.clear_authentication: no claims');

select tests.authenticate_as_anon();
select is(current_user::text || ' ' || auth.role(), 'anon anon', 'tests.authenticate_as_anon: role and claim anon');
select is(auth.uid(), null, 'tests.authenticate_as_anon: no user');

select tests.authenticate_as_service_role();
select is(current_user::text || ' ' || auth.role(), 'service_role service_role',
  'tests.authenticate_as_service_role: role and claim service_role');
select is(auth.uid(), null, 'tests.authenticate_as_service_role: no user');
rollback to savepoint helpers;

select is(current_user::text, 'postgres', 'the helpers'' role is gone once the (sub)transaction ended');
select is(nullif(current_setting('request.jwt.claims', true), ''), null, 'the helpers'' claims are gone with it');

select * from finish();
rollback;
