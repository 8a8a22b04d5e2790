// The demo downstream mailbox server: a plain SMTP server that stores each message it receives
// as <dir>/<recipient>/<id>.eml, one copy per recipient. It stands in for a hosted domain's own
// mail server in the demo and in tests; `hooks` let tests make it slow or refuse recipients.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { ulid } from 'ulid';

export interface MailboxHooks {
  /** Reply to give this recipient instead of accepting it, e.g. { code: 550, text: '5.1.1 No such user' }. */
  refuseRecipient?: (address: string) => { code: number; text: string } | undefined;
  /** Called once the whole message arrived, before the reply; may delay it. */
  beforeReply?: (message: Buffer, session: SMTPServerSession) => Promise<void>;
}

export interface Mailbox {
  port: number;
  close(): Promise<void>;
}

export async function startMailbox(o: { dir: string; host: string; port: number; hooks?: MailboxHooks }): Promise<Mailbox> {
  const hooks = o.hooks ?? {};
  const server = new SMTPServer({
    name: 'mailbox.demo',
    banner: 'mailmoat demo mailbox',
    disabledCommands: ['AUTH', 'STARTTLS'],
    authOptional: true,
    logger: false,
    disableReverseLookup: true,
    hideDSN: false, // so that tests can see the DSN parameters the gateway passes on
    onRcptTo(address, _session, callback) {
      const refusal = hooks.refuseRecipient?.(address.address);
      if (refusal) return callback(Object.assign(new Error(refusal.text), { responseCode: refusal.code }));
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const message = Buffer.concat(chunks);
        const id = ulid();
        void (async () => {
          await hooks.beforeReply?.(message, session);
          for (const rcpt of session.envelope.rcptTo) {
            const box = path.join(o.dir, safeName(rcpt.address));
            await fs.mkdir(box, { recursive: true });
            await fs.writeFile(path.join(box, `${id}.eml`), message);
          }
          callback(null, `Stored as ${id}`);
        })().catch((err: Error) => callback(Object.assign(err, { responseCode: 451 })));
      });
    },
  });
  // A sender that dies mid-transaction (a gateway killed while delivering) resets its connection;
  // smtp-server reports that as an 'error' of the server, which would otherwise end this process.
  // The message was not acknowledged, so there is nothing to do.
  server.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  const addr = server.server.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : o.port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** A recipient address as a folder name: no path separators, no dot-only names. */
function safeName(address: string): string {
  const name = address.toLowerCase().replace(/[^a-z0-9@._+-]/g, '_');
  return name.replace(/^\.+/, '_');
}
