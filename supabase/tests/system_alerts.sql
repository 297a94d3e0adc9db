-- Alert transitions in SQL: raise → one notification claimed → the same state again changes nothing
-- → clear → raise again within the cooldown: suppressed → after the cooldown: notified; failed
-- notifications retried after the cooldown; acknowledgement; cron jobs as subjects; audit rows for
-- each transition; the scheduled call and its Vault secrets. The facts are this file's: SMS, Stripe
-- events and pg_cron runs are deleted inside the transaction (rolled back at the end).
begin;
select plan(58);

delete from public.sms_alerts;
delete from public.billing_events;
delete from cron.job_run_details;
delete from public.system_alerts;
-- A complete billing sync just now, so billing_sync is ok throughout.
insert into public.system_audit_logs (area, action, actor, details)
values ('billing', 'billing_sync', 'system_alerts test', '{"status": "complete", "run_id": "00000000-0000-4000-8000-0000000000aa"}');

create function pg_temp.settings(missing text default null) returns jsonb language sql as $$
  select jsonb_agg(jsonb_build_object('name', n, 'status', case when n = missing then 'missing' else 'ok' end,
                                      'optional', false, 'seed', true) order by n)
    from unnest(array['APP_URL', 'OWNER_MOBILE', 'STRIPE_SECRET_KEY', 'TWILIO_AUTH_TOKEN']) as n
$$;
create function pg_temp.evaluate(missing text default null) returns jsonb language sql as $$
  select private.evaluate_system_status(jsonb_build_object(
    'caller', '{"kind": "service"}'::jsonb, 'settings', pg_temp.settings(missing), 'db_size_quota_mb', 100000))
$$;
create function pg_temp.sms(status text, n integer) returns void language sql as $$
  insert into public.sms_alerts (direction, from_number, to_number, body, status)
  select 'outbound', '+15145550199', '+15145550151', 'alert test', status from generate_series(1, n)
$$;
create function pg_temp.alert(kind text, subject text default '') returns public.system_alerts language sql as $$
  select * from public.system_alerts as a where a.kind = $1 and a.subject = $2 order by a.id desc limit 1
$$;
create function pg_temp.audits(action text) returns integer language sql as $$
  select count(*)::int from public.system_audit_logs as l
   where l.area = 'system' and l.action = $1 and l.details ->> 'kind' = 'sms_error_rate'
     and l.created_at = now()  -- this transaction's rows only
$$;

-- ---- nothing bad: nothing happens --------------------------------------------------------------
select is(pg_temp.evaluate() #> '{alerts}', '{"notify": [], "raised": [], "cleared": []}', 'all ok: no transition');

-- ---- raise: one notification claimed -------------------------------------------------------------
select pg_temp.sms('delivered', 9);
select pg_temp.sms('failed', 1);
select is(pg_temp.evaluate() #> '{alerts,raised,0,kind}', '"sms_error_rate"', '1 failed of 10 (10 %): sms_error_rate raised');
select is((pg_temp.alert('sms_error_rate')).state, 'open', 'the alert is open');
select is((pg_temp.alert('sms_error_rate')).last_notification_status, 'pending', 'its notification is claimed (pending)');
select is((pg_temp.alert('sms_error_rate')).notifications, 1, 'one notification');
select is((pg_temp.alert('sms_error_rate')).details ->> 'error_rate', '0.1000', 'the check''s numbers are kept');
select is(pg_temp.audits('alert_raised'), 1, 'an alert_raised audit row');
select is((select details ->> 'notification' from public.system_audit_logs
            where area = 'system' and action = 'alert_raised' and details ->> 'kind' = 'sms_error_rate' and created_at = now()), 'pending',
  '… saying the notification was claimed');

-- The same state again (as the next 5-minute run, or a concurrent one after the first committed).
select is(pg_temp.evaluate() #> '{alerts}', '{"notify": [], "raised": [], "cleared": []}', 'still bad: no second raise, no second notification');
select is((select count(*)::int from public.system_alerts where kind = 'sms_error_rate'), 1, 'still one alert');

-- The function reports how the SMS went.
select is(private.record_system_alert_notification(jsonb_build_object(
  'alert_id', (pg_temp.alert('sms_error_rate')).id, 'attempt', 1, 'status', 'sent', 'message_sid', 'SM0123456789abcdef0123456789abcdef')),
  '{"status": "sent", "recorded": true}', 'notification recorded as sent');
select is((pg_temp.alert('sms_error_rate')).last_notification_status, 'sent', 'status sent');
select is(pg_temp.audits('alert_notified'), 1, 'an alert_notified audit row');
select is(private.record_system_alert_notification(jsonb_build_object(
  'alert_id', (pg_temp.alert('sms_error_rate')).id, 'attempt', 1, 'status', 'failed', 'error', 'late')),
  '{"recorded": false}', 'a second answer for the same attempt changes nothing');
select throws_ok($$ select private.record_system_alert_notification('{"alert_id": 1, "attempt": 1, "status": "maybe"}') $$,
  '22023', null, 'status must be sent or failed');

-- ---- clear -------------------------------------------------------------------------------------
select pg_temp.sms('delivered', 30);
select is(pg_temp.evaluate() #> '{alerts,cleared,0,kind}', '"sms_error_rate"', '1 failed of 40 (2.5 %): cleared');
select is((pg_temp.alert('sms_error_rate')).state, 'cleared', 'state cleared');
select ok((pg_temp.alert('sms_error_rate')).cleared_at is not null, 'cleared_at set');
select is(pg_temp.audits('alert_cleared'), 1, 'an alert_cleared audit row');
select is(pg_temp.evaluate() #> '{alerts}', '{"notify": [], "raised": [], "cleared": []}', 'still fine: nothing more');

-- ---- raise again within the cooldown: suppressed -------------------------------------------------
select pg_temp.sms('undelivered', 5);
select is(pg_temp.evaluate() #> '{alerts,raised,0,notification}', '"suppressed"', 'raised again within the hour: notification suppressed');
select is(pg_temp.evaluate() #> '{alerts,notify}', '[]', 'nothing to send');
select is((select count(*)::int from public.system_alerts where kind = 'sms_error_rate'), 2, 'a second alert row (history kept)');
select is((pg_temp.alert('sms_error_rate')).last_notification_status, 'suppressed', 'marked suppressed');
select is(pg_temp.audits('alert_raised'), 2, 'its alert_raised audit row');

-- ---- the cooldown passes while it is still open: notified then -------------------------------------
update public.system_alerts set last_notified_at = now() - interval '2 hours'
 where kind = 'sms_error_rate' and state = 'cleared';
select is(pg_temp.evaluate() #>> '{alerts,notify,0,idempotency_key}',
  format('system-alert:%s:1', (pg_temp.alert('sms_error_rate')).id), 'after the cooldown: claimed, with its idempotency key');
select is((pg_temp.alert('sms_error_rate')).last_notification_status, 'pending', 'pending');

-- ---- a failed notification is retried after the cooldown, not before -------------------------------
select private.record_system_alert_notification(jsonb_build_object(
  'alert_id', (pg_temp.alert('sms_error_rate')).id, 'attempt', 1, 'status', 'failed', 'error', 'Twilio refused the message (code 21610)'));
select is((select details ->> 'error' from public.system_audit_logs
            where area = 'system' and action = 'alert_notified' and details ->> 'status' = 'failed' and created_at = now()),
  'Twilio refused the message (code 21610)', 'a failed notification carries details.error (the guide''s error query finds it)');
select is(pg_temp.evaluate() #> '{alerts,notify}', '[]', 'failed just now: not retried within the cooldown');
update public.system_alerts set last_notified_at = now() - interval '61 minutes' where id = (pg_temp.alert('sms_error_rate')).id;
select is(pg_temp.evaluate() #>> '{alerts,notify,0,attempt}', '2', 'failed over an hour ago: retried (attempt 2)');
select is(private.record_system_alert_notification(jsonb_build_object(
  'alert_id', (pg_temp.alert('sms_error_rate')).id, 'attempt', 1, 'status', 'sent')), '{"recorded": false}',
  'an answer for the older attempt changes nothing');

-- ---- acknowledge --------------------------------------------------------------------------------------
select is(private.ack_system_alert((pg_temp.alert('sms_error_rate')).id, 'operator@example.com') ->> 'acked', 'true', 'acknowledged');
select is((pg_temp.alert('sms_error_rate')).state, 'acked', 'state acked');
select is((pg_temp.alert('sms_error_rate')).acked_by, 'operator@example.com', 'acked_by');
select is(pg_temp.audits('alert_acked'), 1, 'an alert_acked audit row');
select is(private.ack_system_alert((pg_temp.alert('sms_error_rate')).id, 'x') - 'id', '{"acked": false, "state": "acked"}',
  'acknowledging it again: not open');
select throws_ok($$ select private.ack_system_alert(999999999999, 'x') $$, 'P0002', null, 'an unknown alert: no_data_found');
update public.system_alerts set last_notified_at = now() - interval '3 hours' where id = (pg_temp.alert('sms_error_rate')).id;
select is(pg_temp.evaluate() #> '{alerts,notify}', '[]', 'an acknowledged alert is not notified again');
delete from public.sms_alerts where status = 'undelivered';
select is(pg_temp.evaluate() #> '{alerts,cleared,0,kind}', '"sms_error_rate"', 'an acknowledged alert still clears');

-- ---- settings and cron jobs --------------------------------------------------------------------------
select is(pg_temp.evaluate('OWNER_MOBILE') #>> '{alerts,raised,0,kind}', 'settings', 'a missing setting: settings raised');
select is((pg_temp.alert('settings')).details #> '{problems}', '[{"name": "OWNER_MOBILE", "status": "missing"}]',
  'its details name the setting (never a value)');
select is(pg_temp.evaluate() #>> '{alerts,cleared,0,kind}', 'settings', 'set again: cleared');

select cron.schedule('alert-test-job', '0 0 31 2 *', 'select 1');
insert into cron.job_run_details (jobid, runid, status, return_message, start_time, end_time)
select jobid, 9100000000001, 'failed', 'boom', now(), now() from cron.job where jobname = 'alert-test-job';
select is(pg_temp.evaluate() #>> '{alerts,raised,0,subject}', 'alert-test-job', 'a failed run: cron_job_failed raised for that job');
select is((pg_temp.alert('cron_job_failed', 'alert-test-job')).state, 'open', 'cron_job_failed open, subject = the job');
insert into cron.job_run_details (jobid, runid, status, start_time, end_time)
select jobid, 9100000000002, 'succeeded', now(), now() from cron.job where jobname = 'alert-test-job';
select is(pg_temp.evaluate() #>> '{alerts,cleared,0,subject}', 'alert-test-job', 'its next run succeeded: cleared');
insert into cron.job_run_details (jobid, runid, status, start_time, end_time)
select jobid, 9100000000003, 'failed', now(), now() from cron.job where jobname = 'alert-test-job';
select is(pg_temp.evaluate() #>> '{alerts,raised,0,notification}', 'suppressed', 'failing again within the hour: raised, suppressed');
select cron.unschedule('alert-test-job');
select is(pg_temp.evaluate() #>> '{alerts,cleared,0,subject}', 'alert-test-job', 'the job is gone: its alert clears');

-- ---- one open alert per kind and subject, whatever happens -----------------------------------------
select pg_temp.sms('failed', 10);
select pg_temp.evaluate();
select throws_ok($$ insert into public.system_alerts (kind) values ('sms_error_rate') $$, '23505', null,
  'a second open sms_error_rate alert is impossible (unique index)');

-- ---- evaluate_system_status: the service only; trims pg_cron's history; records --------------------
select throws_ok($$ select private.evaluate_system_status('{"caller": {"kind": "nobody"}, "settings": [], "db_size_quota_mb": 1}') $$,
  '42501', null, 'evaluate_system_status: not for anyone but the service');
insert into cron.job_run_details (jobid, runid, status, start_time, end_time) values
  (424242, 9200000000001, 'succeeded', now() - interval '40 days', now() - interval '40 days'),
  (424242, 9200000000002, 'succeeded', now() - interval '35 days', now() - interval '35 days'),
  (424243, 9200000000003, 'succeeded', now() - interval '35 days', now() - interval '35 days');
select pg_temp.evaluate();
select is(array(select runid from cron.job_run_details where jobid in (424242, 424243) order by runid),
  array[9200000000002, 9200000000003]::bigint[], 'runs older than 30 days are deleted, each job''s last one kept');
select is((select evaluated_alerts from private.system_status_history order by id desc limit 1), true,
  'the evaluation is recorded, marked as having evaluated the alerts');
select ok(pg_temp.evaluate() -> 'open_alerts' @> '[{"kind": "sms_error_rate"}]', 'the answer lists the open alerts after the transitions');

-- ---- the scheduled call ---------------------------------------------------------------------------
select is((select schedule || ' | ' || command from cron.job where jobname = 'system-status-evaluate'),
  '*/5 * * * * | select private.request_status_evaluation()', 'every 5 minutes, through private.request_status_evaluation()');
delete from vault.secrets where name in ('functions_url', 'service_secret_key');
select throws_like($$ select private.request_status_evaluation() $$, '%functions_url, service_secret_key missing%',
  'without its Vault secrets the run fails, naming them');
select vault.create_secret('http://127.0.0.1:9/functions/v1/', 'functions_url');
select vault.create_secret('sb_secret_alertsTestNotARealKey_0123', 'service_secret_key');
select private.request_status_evaluation() as request_id \gset
select is((select url || ' ' || method from net.http_request_queue where id = :request_id),
  'http://127.0.0.1:9/functions/v1/system-status POST', 'it queues a POST to system-status (sent after commit: this one never is)');
select is((select headers ->> 'apikey' from net.http_request_queue where id = :request_id), 'sb_secret_alertsTestNotARealKey_0123',
  'with the Vault''s secret key');

-- ---- closed to the API roles ---------------------------------------------------------------------
select is_empty($$
  select format('%s: %s', r, p::regprocedure)
    from unnest(array['private.evaluate_system_alerts(jsonb, interval)', 'private.evaluate_system_status(jsonb)',
                      'private.record_system_alert_notification(jsonb)', 'private.ack_system_alert(bigint, text)',
                      'private.request_status_evaluation()']::regprocedure[]) as p,
         unnest(array['anon', 'authenticated', 'service_role']) as r
   where has_function_privilege(r, p, 'execute')
$$, 'no API role may call the alert functions');
select tests.create_tenant('alerts tenant', id => '5e000000-0000-4000-8000-000000000001');
select tests.create_member('5e000000-0000-4000-8000-000000000001', 'owner', 'owner@alerts.example.com', id => '5e000000-0000-4000-8000-0000000000a1');
select tests.authenticate_as('5e000000-0000-4000-8000-0000000000a1');
select throws_ok('select * from public.system_alerts', '42501', null, 'a tenant owner cannot read system_alerts');
select tests.clear_authentication();

select * from finish();
rollback;
