// Issue 18: DKIM signatures on outbound mail (submitted or relayed), made over the finished copy,
// after every change the gateway makes (headers, removed attachments, disarmed HTML), so that the
// signature still verifies where the copy arrives. mailauth's signer (relaxed/relaxed, rsa-sha256).
//
// Keys live in the data dir: dkim/<domain>/<selector>.key (PEM, mode 0600), and dkim/<domain>/
// active names the selector in use. Rotation is by selector: `mailmoat dkim keygen DOMAIN
// --selector NEW` writes a new key and makes it active; the old selector's TXT record stays in
// DNS until mail signed with it has been delivered.
import { generateKeyPairSync } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { dkimSign } from './mailauth-core.ts';
import type { Envelope } from '../spool/spool.ts';
import { fromAddresses } from '../../rules/from-header.ts';

export interface DkimKey {
  domain: string;
  selector: string;
  privateKey: string;
}

const SELECTOR = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i;
const DOMAIN = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/i;

const domainDir = (dataDir: string, domain: string) => path.join(dataDir, 'dkim', domain.toLowerCase());

/** Makes a new RSA-2048 key for the domain under the selector, makes it the active one, and returns the DNS TXT record. */
export async function generateDkimKey(dataDir: string, domain: string, selector: string): Promise<{ name: string; txt: string; keyFile: string }> {
  if (!DOMAIN.test(domain)) throw new Error(`not a domain name: ${domain}`);
  if (!SELECTOR.test(selector)) throw new Error(`not a selector (letters, digits, - and .): ${selector}`);
  const dir = domainDir(dataDir, domain);
  const keyFile = path.join(dir, `${selector}.key`);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  // A selector names one key for ever: overwriting it would break the signatures of mail in flight.
  if (
    await fs.stat(keyFile).then(
      () => true,
      () => false,
    )
  )
    throw new Error(`${keyFile} exists already: choose a new selector to rotate`);
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  await fs.writeFile(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
  await fs.writeFile(path.join(dir, 'active'), `${selector}\n`);
  const p = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  return { name: `${selector}._domainkey.${domain.toLowerCase()}`, txt: `v=DKIM1; k=rsa; p=${p}`, keyFile };
}

/** The active key of a domain, or null when it has none. A key named but unreadable is an error. */
export async function activeDkimKey(dataDir: string, domain: string): Promise<DkimKey | null> {
  const dir = domainDir(dataDir, domain);
  const selector = (
    await fs.readFile(path.join(dir, 'active'), 'utf8').catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? '' : Promise.reject(err)))
  ).trim();
  if (!selector) return null;
  if (!SELECTOR.test(selector)) throw new Error(`${dir}/active: not a selector: ${selector}`);
  const privateKey = await fs.readFile(path.join(dir, `${selector}.key`), 'utf8');
  return { domain: domain.toLowerCase(), selector, privateKey };
}

/** Whether the message goes out for a customer (signed, no inbound-only headers). */
export const isOutbound = (env: Envelope): boolean => env.submitted !== undefined;

/**
 * The DKIM-Signature for a finished copy: by the From header's domain (what DMARC aligns with),
 * else by the envelope sender's; empty when neither domain has a key. Throws when signing fails.
 */
export async function dkimSignatureFor(copyFile: string, env: Envelope, dataDir: string): Promise<Buffer> {
  const raw = await fs.readFile(copyFile);
  const headEnd = raw.indexOf('\r\n\r\n');
  const head = raw.subarray(0, headEnd === -1 ? raw.length : headEnd).toString('utf8');
  const domains = [...fromAddresses(head), env.mailFrom].filter((a) => a.includes('@')).map((a) => a.slice(a.lastIndexOf('@') + 1).toLowerCase());
  for (const domain of new Set(domains)) {
    const key = await activeDkimKey(dataDir, domain);
    if (!key) continue;
    // mailauth signs with the entries of signatureData (the top-level key fields are only typed).
    const signature = { signingDomain: key.domain, selector: key.selector, privateKey: key.privateKey };
    const signed = await dkimSign(raw, { ...signature, canonicalization: 'relaxed/relaxed', signatureData: [signature] } as Parameters<typeof dkimSign>[1]);
    if (signed.errors?.length || !signed.signatures) throw new Error(`DKIM signing for ${domain} failed: ${JSON.stringify(signed.errors)}`);
    return Buffer.from(signed.signatures);
  }
  return Buffer.alloc(0);
}
