// What every console page handler is given (Ctx) and who is asking (ConsoleUser): apart from
// app.ts, which builds them, so that the route files and app.ts do not import each other.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Account } from '../gateway/store/accounts.ts';
import type { AuditOutcome } from '../gateway/store/audit.ts';
import type { RecipientScope } from '../gateway/store/metadata.ts';
import type { ConsoleDeps } from './deps.ts';

export interface ConsoleUser {
  account: Account;
  scope: RecipientScope;
  sessionId: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    user: ConsoleUser | null;
    /** Release requests waiting for this administrator (the navigation's badge). */
    pendingRequests: number;
  }
  interface FastifyInstance {
    /** Every route of the console as "METHOD /path" (for the route-by-route isolation tests). */
    consoleRoutes: string[];
  }
}

export interface Ctx {
  deps: ConsoleDeps;
  /** Renders a page with the layout, the user, a fresh CSRF token and pending flash messages. */
  render(req: FastifyRequest, reply: FastifyReply, view: string, data?: Record<string, unknown>, status?: number): FastifyReply;
  audit(req: FastifyRequest, e: { action: string; messageId?: string | null; target?: string | null; outcome?: AuditOutcome; detail?: string }): Promise<void>;
  flash(req: FastifyRequest, kind: 'ok' | 'error', text: string): void;
  /** A 404 page; the same whether the thing does not exist or belongs to another tenant. */
  notFound(req: FastifyRequest, reply: FastifyReply): FastifyReply;
  /** The user of a logged-in route (the auth hook guarantees one). */
  user(req: FastifyRequest): ConsoleUser;
}

/** The URL people reach the console at: console.publicUrl, else the listen address over http. */
export function consolePublicUrl(config: ConsoleDeps['config']): string {
  const c = config.console;
  if (c.publicUrl) return c.publicUrl.endsWith('/') ? c.publicUrl : `${c.publicUrl}/`;
  const host = ['0.0.0.0', '::'].includes(c.listen.host) ? config.hostname : c.listen.host.includes(':') ? `[${c.listen.host}]` : c.listen.host;
  return `http://${host}:${c.listen.port}/`;
}
