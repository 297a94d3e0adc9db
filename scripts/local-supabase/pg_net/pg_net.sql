-- Local-only pg_net (not packaged for Debian): pg_net's SQL side, applied by the local stack right
-- after bootstrap.sql; its background worker is ./worker.ts (run by the functions gateway).
--
-- NEVER copy this into supabase/migrations: on a hosted project pg_net is an extension that
-- Supabase installs. Idempotent.

\set ON_ERROR_STOP on
set client_min_messages = warning;

-- ---------------------------------------------------------------------------------------------
-- pg_net (not packaged for Debian): same schema, tables and function signatures. Requests are
-- queued in net.http_request_queue; the local stack's net worker (scripts/local-supabase/pg_net/worker.ts)
-- is woken by a NOTIFY that PostgreSQL delivers only on commit, sends each request once, and
-- writes net._http_response, as pg_net's background worker does. A rolled-back request never
-- leaves the database.
-- ---------------------------------------------------------------------------------------------
create schema if not exists net;
grant usage on schema net to postgres, anon, authenticated, service_role, supabase_functions_admin;

do $$
begin
  if not exists (select from pg_type t join pg_namespace n on n.oid = t.typnamespace
                 where n.nspname = 'net' and t.typname = 'http_method') then
    create type net.http_method as enum ('GET', 'POST', 'DELETE');
  end if;
end
$$;

create unlogged table if not exists net.http_request_queue (
  id bigserial primary key,
  method net.http_method not null,
  url text not null,
  headers jsonb not null,
  body bytea,
  timeout_milliseconds integer not null
);

create unlogged table if not exists net._http_response (
  id bigint,
  status_code integer,
  content_type text,
  headers jsonb,
  content text,
  timed_out boolean,
  error_msg text,
  created timestamptz not null default now()
);
create index if not exists _http_response_created_idx on net._http_response (created);

grant all on net.http_request_queue, net._http_response to postgres, supabase_functions_admin;
grant usage on sequence net.http_request_queue_id_seq to postgres, supabase_functions_admin;

create or replace function net._wake_worker() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  -- Delivered to listeners only when the inserting transaction commits.
  perform pg_notify('net_http_request_queue', new.id::text);
  return new;
end
$$;

drop trigger if exists wake_worker on net.http_request_queue;
create trigger wake_worker after insert on net.http_request_queue
  for each row execute function net._wake_worker();

-- Percent-encodes every byte outside RFC 3986's unreserved set, as curl_easy_escape() does for
-- pg_net's query parameters.
create or replace function net._url_encode(part text) returns text
language sql immutable strict
set search_path = ''
as $$
  select coalesce(string_agg(
    case when ch ~ '^[A-Za-z0-9._~-]$' then ch
         else pg_catalog.upper(pg_catalog.regexp_replace(
                pg_catalog.encode(pg_catalog.convert_to(ch, 'UTF8'), 'hex'), '(..)', '%\1', 'g'))
    end, '' order by position), '')
  from pg_catalog.regexp_split_to_table(part, '') with ordinality as chars (ch, position)
$$;

create or replace function net._encode_url_with_params(url text, params jsonb) returns text
language sql immutable
set search_path = ''
as $$
  select case
    when params is null or params = '{}'::jsonb then url
    else url || case when strpos(url, '?') > 0 then '&' else '?' end || (
      select string_agg(net._url_encode(key) || '=' || net._url_encode(value), '&')
      from jsonb_each_text(params)
    )
  end
$$;

create or replace function net.http_get(
  url text,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{}'::jsonb,
  timeout_milliseconds integer default 5000
) returns bigint
language sql volatile security definer
set search_path = ''
as $$
  insert into net.http_request_queue (method, url, headers, timeout_milliseconds)
  values ('GET', net._encode_url_with_params(url, params), coalesce(headers, '{}'::jsonb), timeout_milliseconds)
  returning id
$$;

create or replace function net.http_post(
  url text,
  body jsonb default '{}'::jsonb,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{"Content-Type": "application/json"}'::jsonb,
  timeout_milliseconds integer default 5000
) returns bigint
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  request_id bigint;
begin
  -- pg_net only sends JSON bodies from http_post and refuses any other declared content type.
  if coalesce(headers ->> 'Content-Type', headers ->> 'content-type', 'application/json') <> 'application/json' then
    raise exception 'Content-Type header must be "application/json"';
  end if;
  insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
  values ('POST', net._encode_url_with_params(url, params),
          (coalesce(headers, '{}'::jsonb) - 'content-type') || '{"Content-Type": "application/json"}'::jsonb,
          convert_to(body::text, 'UTF8'), timeout_milliseconds)
  returning id into request_id;
  return request_id;
end
$$;

create or replace function net.http_delete(
  url text,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{}'::jsonb,
  timeout_milliseconds integer default 5000
) returns bigint
language sql volatile security definer
set search_path = ''
as $$
  insert into net.http_request_queue (method, url, headers, timeout_milliseconds)
  values ('DELETE', net._encode_url_with_params(url, params), coalesce(headers, '{}'::jsonb), timeout_milliseconds)
  returning id
$$;

revoke all on function net.http_get(text, jsonb, jsonb, integer) from public;
revoke all on function net.http_post(text, jsonb, jsonb, jsonb, integer) from public;
revoke all on function net.http_delete(text, jsonb, jsonb, integer) from public;
grant execute on function net.http_get(text, jsonb, jsonb, integer),
                          net.http_post(text, jsonb, jsonb, jsonb, integer),
                          net.http_delete(text, jsonb, jsonb, integer)
  to postgres, supabase_functions_admin, service_role;

