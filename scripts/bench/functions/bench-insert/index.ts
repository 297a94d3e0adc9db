// Bench function: a webhook's essential work, one database round trip per request (the design
// rule of the functions): the JSON body stored by ONE autocommitted INSERT. Pool settings as the
// functions use them (prepare off, for the pooler); the pool is as large as the benchmark's
// concurrency so that it never queues requests.
import postgres from "postgres";

const sql = postgres(Deno.env.get("SUPABASE_DB_URL")!, {
  max: 16,
  prepare: false,
  onnotice: () => {},
  connection: { application_name: "bench-insert" },
});

Deno.serve(async (req) => {
  const body = await req.text();
  const [row] = await sql`insert into bench.webhook_events (payload) values (${body}::jsonb) returning id`;
  return Response.json({ id: row.id });
});
