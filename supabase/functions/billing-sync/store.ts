// billing-sync's SQL calls: one statement each (claim, page, fetched event, finish), all in
// supabase/migrations/2026112805*. Run as the service (postgres): the caller has been authorised by
// the handler already.
import type { Sql } from "../_shared/db.ts";
import type { ClaimedRun, PageInput, PageOutcome, RunStore, StripeJson } from "./engine.ts";

export interface ClaimRequest {
  scope: "full" | "tenant";
  tenant_id?: string;
  stripe_customer_id?: string;
  trigger: "cron" | "service" | "admin";
  requested_by: string;
  livemode: boolean;
  run_id?: string;
  restart?: boolean;
  lease_seconds: number;
  cooldown_seconds?: number;
}

export type ClaimOutcome =
  | { outcome: "started" | "resumed"; took_over: boolean; run: ClaimedRun }
  | { outcome: "busy"; run_id: string; lease_until: string }
  | { outcome: "cooldown"; retry_after_seconds: number }
  | { outcome: "not_found"; run_id: string }
  | { outcome: "finished"; run_id?: string; run?: Report };

/** The run's report, as in its audit row (private.billing_sync_report). */
export interface Report {
  run_id: string;
  status: "complete" | "incomplete" | "failed" | "abandoned";
  scope: "full" | "tenant";
  phase: string;
  drift: Record<"customers" | "subscriptions" | "invoices", Record<string, number>>;
  api_calls: number;
  events_replayed: number;
  events_seen: number;
  pages: number;
  invocations: number;
  rate_limited: number;
  stop_reason?: string;
  error?: string;
  [key: string]: unknown;
}

export type FinishOutcome = { outcome: "finished"; report: Report } | { outcome: "lease_lost"; run_id: string };

export interface FinishInput {
  status: "complete" | "incomplete" | "failed";
  stop_reason?: string;
  error?: string;
  api_calls: number;
  rate_limited: number;
}

export class SqlRunStore implements RunStore {
  constructor(readonly sql: Sql, readonly prices: Record<string, string>) {}

  async claim(request: ClaimRequest): Promise<ClaimOutcome> {
    const [row] = await this.sql<{ r: ClaimOutcome }[]>`select private.billing_sync_claim(${this.sql.json(request as never)}) as r`;
    return row.r;
  }

  async applyPage(run: ClaimedRun, page: PageInput): Promise<PageOutcome> {
    const body = { ...page, prices: this.prices };
    const [row] = await this.sql<{ r: PageOutcome }[]>`
      select private.billing_sync_apply_page(${run.id}::uuid, ${run.lease_id}::uuid, ${this.sql.json(body as never)}) as r`;
    return row.r;
  }

  async applyFetchedEvent(run: ClaimedRun, event: StripeJson, options: Record<string, unknown>): Promise<PageOutcome> {
    const [row] = await this.sql<{ r: PageOutcome }[]>`
      select private.billing_sync_apply_fetched_event(${run.id}::uuid, ${run.lease_id}::uuid,
        ${this.sql.json(event as never)}, ${this.sql.json({ ...options, prices: this.prices } as never)}) as r`;
    return row.r;
  }

  async finish(run: ClaimedRun, input: FinishInput): Promise<FinishOutcome> {
    const [row] = await this.sql<{ r: FinishOutcome }[]>`
      select private.billing_sync_finish(${run.id}::uuid, ${run.lease_id}::uuid, ${this.sql.json(input as never)}) as r`;
    return row.r;
  }
}
