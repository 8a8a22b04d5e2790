// A client for Dovecot's authentication protocol (auth-client socket, protocol 1.2), written here
// because no maintained npm package speaks it (the npm registry has none; Python's `dovecotauth`
// is the only library) and the exchange needed is five lines: VERSION/CPID, the server's
// handshake up to DONE, one AUTH PLAIN, one OK or FAIL.
// https://doc.dovecot.org/developer_manual/design/auth_protocol/
//
// Fail closed: a socket error, a timeout, a FAIL marked `temp` or an answer we do not understand
// rejects the promise (the caller answers 454 4.7.0); only a plain FAIL is "wrong credentials".
import net from 'node:net';

export interface DovecotAuthOptions {
  socket: string;
  /** The service name the passdb sees (`%s`). */
  service: string;
  timeoutMs: number;
}

export type DovecotAnswer = { ok: true; user: string } | { ok: false; reason?: string };

/** TAB and LF end fields and lines in the protocol: a value carrying them could forge parameters. */
const clean = (v: string) => v.replace(/[\t\r\n\0]/g, '');

export function dovecotAuthenticate(
  o: DovecotAuthOptions,
  username: string,
  password: string,
  client: { ip?: string; secured?: boolean } = {},
): Promise<DovecotAnswer> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(o.socket);
    let buffer = '';
    let handshakeDone = false;
    let settled = false;
    const finish = (err: Error | null, answer?: DovecotAnswer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(answer!);
    };
    const timer = setTimeout(() => finish(new Error(`dovecot auth: no answer within ${o.timeoutMs} ms`)), o.timeoutMs);
    sock.on('error', (err) => finish(new Error(`dovecot auth: ${err.message}`)));
    sock.on('close', () => finish(new Error('dovecot auth: connection closed before an answer')));
    sock.on('connect', () => sock.write(`VERSION\t1\t2\nCPID\t${process.pid}\n`));
    const resp = Buffer.from(`\0${username}\0${password}`).toString('base64');
    // no-penalty: Dovecot's own failure penalty (growing delays per client address) would turn into
    // timeouts here; the gateway's lockout (auth-limits.ts) counts failures across nodes instead.
    const params = [
      `service=${clean(o.service)}`,
      'nologin',
      'no-penalty',
      ...(client.secured ? ['secured'] : []),
      ...(client.ip ? [`rip=${clean(client.ip)}`] : []),
      `resp=${resp}`,
    ];
    sock.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      if (buffer.length > 65_536) return finish(new Error('dovecot auth: answer too long'));
      let nl: number;
      while ((nl = buffer.indexOf('\n')) !== -1) {
        const fields = buffer.slice(0, nl).split('\t');
        buffer = buffer.slice(nl + 1);
        const [verb, id, ...rest] = fields;
        if (!handshakeDone) {
          if (verb === 'VERSION' && id !== '1') return finish(new Error(`dovecot auth: unsupported protocol version ${id}`));
          if (verb === 'DONE') {
            handshakeDone = true;
            sock.write(`AUTH\t1\tPLAIN\t${params.join('\t')}\n`);
          }
          continue;
        }
        if (id !== '1') continue;
        const kv = Object.fromEntries(rest.map((f) => [f.split('=')[0], f.includes('=') ? f.slice(f.indexOf('=') + 1) : '']));
        if (verb === 'OK') return finish(null, { ok: true, user: kv.user || username });
        if (verb === 'FAIL') {
          if ('temp' in kv) return finish(new Error(`dovecot auth: temporary failure${kv.reason ? `: ${kv.reason}` : ''}`));
          return finish(null, { ok: false, ...(kv.reason ? { reason: kv.reason } : {}) });
        }
        return finish(new Error(`dovecot auth: unexpected answer ${verb}`));
      }
    });
  });
}
