// The override of smtp-server's pre-greeting delay is tied to the library version it was written
// for: an upgrade that changes SMTPConnection.init must stop the gateway from starting (and fail
// here first), never run a stale copy. The behaviour itself is tested over sockets in
// test/e2e/frontline-protocol.test.ts (early talkers with and without a greet pause).
import { afterEach, describe, expect, it } from 'vitest';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { KNOWN_INIT, fingerprint, installImmediateGreeting } from '../../../gateway/smtp/greeting.ts';

const original = SMTPConnection.prototype.init;

describe('installImmediateGreeting', () => {
  afterEach(() => {
    SMTPConnection.prototype.init = original;
  });

  it('the installed smtp-server has the init() the override was written for', () => {
    expect(fingerprint(original)).toBe(KNOWN_INIT);
  });

  it('refuses to install over an init() it does not know (a library upgrade)', () => {
    SMTPConnection.prototype.init = function init(this: SMTPConnection) {
      this._setListeners(() => setTimeout(() => this.connectionReady(), 250).unref());
    };
    expect(() => installImmediateGreeting()).toThrow(/SMTPConnection\.prototype\.init is not the version/);
  });

  it('replaces the known init() with one that greets without a timer', () => {
    installImmediateGreeting();
    expect(SMTPConnection.prototype.init).not.toBe(original);
    expect(SMTPConnection.prototype.init.toString()).not.toContain('setTimeout');
  });
});
