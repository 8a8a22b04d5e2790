// The API's errors: a status with a JSON body (api/index.ts turns them into replies), and the
// audited 404 every endpoint gives for "missing" and "another tenant's" alike.
import type { FastifyRequest } from 'fastify';
import type { Ctx } from '../ctx.ts';

export class ApiError extends Error {
  readonly statusCode: number;
  readonly details: string[] | undefined;
  constructor(statusCode: number, message: string, details?: string[]) {
    super(message);
    this.statusCode = statusCode;
    this.details = details;
  }
}

/** A 404 that looks the same for "missing" and "another tenant's", with its audit row. */
export async function apiNotFound(ctx: Ctx, req: FastifyRequest, e: { action: string; messageId?: string; target?: string; detail: string }): Promise<never> {
  await ctx.audit(req, { action: e.action, messageId: e.messageId ?? null, target: e.target ?? null, outcome: 'denied', detail: `${e.detail} (API)` });
  throw new ApiError(404, 'not found');
}
