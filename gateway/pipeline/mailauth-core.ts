// mailauth without BIMI. Its entry point (lib/mailauth.js) loads the BIMI module at the top, and
// with it undici, @postalsys/vmc (@peculiar/asn1-*), joi's schemas and fast-xml-parser: about
// 11 MB of resident memory and ~300 modules in every process that authenticates, for a check we
// never run (disableBimi: fetching logos over HTTP has no place on the mail path). Here the entry
// point is loaded once more with its two BIMI modules replaced by ones that throw, so a call that
// reached them would be an error result (the scan is retried), never a silent pass. Everything
// else (DKIM, SPF, DMARC, ARC, the sealer) is mailauth's own code, shared with any other copy,
// except that this copy's DKIM verifier finds the end of the header section without allocating
// per byte (mailauth-header-end.ts): its dkim/verify module is loaded afresh on that subclass.
import Module, { createRequire } from 'node:module';
import type * as Mailauth from 'mailauth';
import { headerEndVerifierModule } from './mailauth-header-end.ts';

const require = createRequire(import.meta.url);

function loadedModule(file: string, exports: unknown): Module {
  const m = new Module(file);
  m.filename = file;
  m.loaded = true;
  m.exports = exports;
  return m;
}

function refusing(file: string): Module {
  const refuse = () => {
    throw new Error('BIMI is not loaded in mailmoat (disableBimi)');
  };
  return loadedModule(file, { bimi: refuse, validateVMC: refuse, validateSvg: refuse });
}

function loadWithoutBimi(): typeof Mailauth {
  const entry = require.resolve('mailauth');
  let bimi: string[];
  let verify: string;
  let verifier: ReturnType<typeof headerEndVerifierModule>;
  try {
    bimi = [require.resolve('mailauth/lib/bimi/index.js'), require.resolve('mailauth/lib/bimi/validate-svg.js')];
    verify = require.resolve('mailauth/lib/dkim/verify.js');
    verifier = headerEndVerifierModule();
  } catch {
    // A mailauth release that moved its BIMI or DKIM files: the whole of it, as published (heavier, same results).
    return require(entry) as typeof Mailauth;
  }
  const saved = [entry, verify, verifier.file, ...bimi].map((f) => [f, require.cache[f]] as const);
  try {
    delete require.cache[entry];
    delete require.cache[verify];
    require.cache[verifier.file] = loadedModule(verifier.file, verifier.exports);
    for (const f of bimi) require.cache[f] = refusing(f);
    return require(entry) as typeof Mailauth;
  } finally {
    // Whoever requires mailauth itself afterwards gets the whole of it, as published.
    for (const [f, m] of saved) {
      if (m) require.cache[f] = m;
      else delete require.cache[f];
    }
  }
}

const mailauth = loadWithoutBimi();
export const authenticate: typeof Mailauth.authenticate = mailauth.authenticate;
export const sealMessage: typeof Mailauth.sealMessage = mailauth.sealMessage;
export const dkimSign: typeof Mailauth.dkimSign = mailauth.dkimSign;
