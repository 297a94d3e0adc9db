// Bench function: reads the request body and answers a small JSON; no I/O. Measures the cost of
// the path to a function (client -> gateway -> worker) with nothing behind it.
Deno.serve(async (req) => {
  await req.arrayBuffer();
  return Response.json({ ok: true });
});
