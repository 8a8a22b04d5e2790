// cheerio's load(), loaded at the first parse. cheerio (with parse5, undici and encoding sniffers:
// ~6 MB of heap) is then only ever loaded where HTML is parsed — with an analysis pool, its thread,
// never the process that answers SMTP. Resolved now, so that a broken install fails at start, not
// at the first message; required as the same ES module that an import would load, so a thread
// that also imports it holds one copy.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const CHEERIO = fileURLToPath(import.meta.resolve('cheerio'));
let cheerio: typeof import('cheerio') | undefined;

export const load: typeof import('cheerio').load = (...args) => (cheerio ??= createRequire(import.meta.url)(CHEERIO) as typeof import('cheerio')).load(...args);
