-- The operations guide's SQL (Guide d'Opérations, "Logs d'audit" and "SMS ne s'envoient pas"),
-- copied VERBATIM (trailing spaces included), run against public.system_audit_logs with rows
-- inserted here. The table is append-only, so rows already there (seed, other activity) cannot be
-- removed: each query is first run as-is to snapshot what it already returns, and the expected
-- result is that snapshot plus this test's rows, in the query's order.
-- Note: in LIKE 'sms_%' the underscore matches any character (e.g. 'smsx'); kept verbatim.
begin;
select plan(9);

create temp table ops_queries (name text primary key, query text not null);
insert into ops_queries (name, query) values
('errors_last_24h', $verbatim$SELECT * FROM system_audit_logs 
WHERE created_at > NOW() - INTERVAL '24 hours'
AND details->>'error' IS NOT NULL
ORDER BY created_at DESC;$verbatim$),
('sms_sent_today', $verbatim$SELECT COUNT(*) FROM system_audit_logs 
WHERE area = 'twilio' 
AND action = 'sms_send'
AND created_at::date = CURRENT_DATE;$verbatim$),
('latest_sms_logs', $verbatim$SELECT * FROM system_audit_logs 
WHERE area = 'twilio' AND action LIKE 'sms_%'
ORDER BY created_at DESC LIMIT 10;$verbatim$);

-- Snapshot of what each query returns before this test's rows exist.
do $$
begin
  execute 'create temp table errors_last_24h_before as ' || (select query from ops_queries where name = 'errors_last_24h');
  execute 'create temp table sms_sent_today_before as ' || (select query from ops_queries where name = 'sms_sent_today');
  execute 'create temp table latest_sms_logs_before as ' || (select query from ops_queries where name = 'latest_sms_logs');
end
$$;

-- Test rows, a few milliseconds after the transaction start so that they are the newest rows.
create temp table test_rows (label text primary key, id bigint not null);
with inserted as (
  insert into public.system_audit_logs (created_at, area, action, actor, target, details)
  select now() + r.offset_ms * interval '1 millisecond', r.area, r.action, 'service_role', r.label, r.details::jsonb
  from (values
    ('sms_ok',          1, 'twilio', 'sms_send',      '{"status": "queued"}'),
    ('sms_failed',      2, 'twilio', 'sms_send',      '{"status": "failed", "error": "30003 Unreachable destination handset"}'),
    ('stripe_failed',   3, 'stripe', 'webhook_event', '{"type": "invoice.paid", "error": "signature mismatch"}'),
    ('inbound',         4, 'twilio', 'inbound',       '{"keyword": "STOP"}'),
    ('voice_no_error',  5, 'twilio', 'voice_forward', '{"error": null}'),
    ('database_sms',    6, 'database', 'sms_send',    '{}'),
    ('status_1',       10, 'twilio', 'sms_status',    '{"status": "sent"}'),
    ('status_2',       11, 'twilio', 'sms_status',    '{"status": "sent"}'),
    ('status_3',       12, 'twilio', 'sms_status',    '{"status": "sent"}'),
    ('status_4',       13, 'twilio', 'sms_status',    '{"status": "delivered"}'),
    ('status_5',       14, 'twilio', 'sms_status',    '{"status": "delivered"}'),
    ('status_6',       15, 'twilio', 'sms_status',    '{"status": "delivered"}'),
    ('status_7',       16, 'twilio', 'sms_status',    '{"status": "delivered"}'),
    ('status_8',       17, 'twilio', 'sms_status',    '{"status": "undelivered", "error": "30005 Unknown destination"}'),
    ('status_9',       18, 'twilio', 'sms_status',    '{"status": "delivered"}')
  ) as r (label, offset_ms, area, action, details)
  returning id, target
)
insert into test_rows (label, id) select target, id from inserted;

-- More than 24 hours old (and on an earlier date): outside "errors" and "today".
insert into public.system_audit_logs (created_at, area, action, actor, target, details)
  values (now() - interval '25 hours', 'twilio', 'sms_send', 'service_role', 'old_failed', '{"error": "30003"}');
insert into test_rows (label, id) select target, id from public.system_audit_logs where target = 'old_failed';

-- ---------------------------------------------------------------------------------------------
-- "Erreurs des dernières 24h"
-- ---------------------------------------------------------------------------------------------
select results_eq(
  (select query from ops_queries where name = 'errors_last_24h'),
  $$ select * from public.system_audit_logs
     where id in (select id from errors_last_24h_before)
        or id in (select id from test_rows where label in ('sms_failed', 'stripe_failed', 'status_8'))
     order by created_at desc $$,
  'errors of the last 24 h: the earlier ones plus this test''s three failures, newest first');
select set_hasnt(
  (select query from ops_queries where name = 'errors_last_24h'),
  $$ select * from public.system_audit_logs
     where id in (select id from test_rows where label in ('old_failed', 'voice_no_error', 'sms_ok')) $$,
  'errors of the last 24 h: no older failure, no JSON-null error, no success');

-- ---------------------------------------------------------------------------------------------
-- "SMS envoyés aujourd'hui"
-- ---------------------------------------------------------------------------------------------
select results_eq(
  (select query from ops_queries where name = 'sms_sent_today'),
  $$ select count + 2 from sms_sent_today_before $$,
  'SMS sent today: two more (twilio/sms_send today; not yesterday''s, not sms_status, not area database)');
-- seed.sql is meant to make these queries show something on a fresh local stack.
select ok((select count > 0 from sms_sent_today_before), 'SMS sent today: the seed has SMS sent today');
select isnt_empty($$ select id from errors_last_24h_before $$, 'errors of the last 24 h: the seed has some');

-- ---------------------------------------------------------------------------------------------
-- "Vérifier logs récents": the last 10 sms_% rows of area twilio
-- ---------------------------------------------------------------------------------------------
select results_eq(
  (select query from ops_queries where name = 'latest_sms_logs'),
  $$ select * from public.system_audit_logs
     where id in (select id from test_rows where label like 'status_%' or label = 'sms_failed')
     order by created_at desc $$,
  'latest SMS logs: this test''s ten newest twilio sms_% rows, newest first');
select set_hasnt(
  (select query from ops_queries where name = 'latest_sms_logs'),
  $$ select * from public.system_audit_logs
     where id in (select id from test_rows where label in ('inbound', 'voice_no_error', 'database_sms', 'sms_ok')) $$,
  'latest SMS logs: no inbound or voice row, no other area, and only ten rows (sms_ok is the eleventh)');
select results_eq(
  $$ select count(*)::int from latest_sms_logs_before $$,
  $$ select least(count(*), 10)::int from public.system_audit_logs
     where area = 'twilio' and action like 'sms_%' and id not in (select id from test_rows) $$,
  'latest SMS logs before the test rows: at most ten');

-- The three queries are the guide's text (one line each checked for the part that matters).
select is(
  (select count(*)::int from ops_queries
   where query like '%details->>''error'' IS NOT NULL%'
      or query like '%created_at::date = CURRENT_DATE;'
      or query like '%LIKE ''sms_\%''%LIMIT 10;'),
  3, 'the verbatim queries are in place');

select * from finish();
rollback;
