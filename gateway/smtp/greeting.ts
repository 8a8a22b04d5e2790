// smtp-server waits a fixed 100 ms before every greeting (an early-talker delay hard-coded in
// SMTPConnection.init, no option). One connection per message, as on a real MX, then pays 100 ms
// per message whatever the CPU: at 10 sessions that caps accept at ~95 msg/s. The pause before our
// greeting is ours to choose (`checks.protocol.greetPauseMs`, applied in Frontline.connect, skipped
// for trusted networks); smtp-server still answers a client that talks before the greeting with
// "421 You talk too soon", since its `_ready` flag stays false until our onConnect has returned.
//
// The override replaces init() with the same steps minus the timer. It is installed only when the
// library's init() is exactly the one it was written against (comments and whitespace aside):
// after an upgrade that changes init(), the gateway refuses to start instead of silently running a
// stale copy. Then compare the new init() with IMMEDIATE_INIT below, adapt it and the fingerprint.
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

/** smtp-server 3.21.x SMTPConnection.prototype.init, without comments and whitespace. */
export const KNOWN_INIT =
  'init(){this._setListeners(()=>{if(this._server.options.maxClients&&this._server.connections.size>this._server.options.maxClients){returnthis.send(421,this.name+' +
  "'Toomanyconnectedclients,tryagaininamoment',false);}letreadyTimer=setTimeout(()=>this.connectionReady(),100);readyTimer.unref();});}";

export const fingerprint = (fn: (...args: never[]) => unknown): string =>
  fn
    .toString()
    .replace(/\/\/[^\n]*/g, '')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/\s+/g, '');

function IMMEDIATE_INIT(this: SMTPConnection): void {
  this._setListeners(() => {
    if (this._server.options.maxClients && this._server.connections.size > this._server.options.maxClients) {
      return this.send(421, this.name + ' Too many connected clients, try again in a moment', false);
    }
    this.connectionReady();
  });
}

let installed = false;

/** Makes smtp-server greet without its fixed 100 ms delay; throws when its init() is not the known one. */
export function installImmediateGreeting(): void {
  if (installed) return;
  const proto = SMTPConnection.prototype;
  const found = fingerprint(proto.init);
  if (found !== KNOWN_INIT) {
    throw new Error(
      'smtp-server: SMTPConnection.prototype.init is not the version gateway/smtp/greeting.ts was written for ' +
        '(the 100 ms pre-greeting delay is replaced there); review the library change and update the override. Found: ' +
        found.slice(0, 300),
    );
  }
  proto.init = IMMEDIATE_INIT;
  installed = true;
}
