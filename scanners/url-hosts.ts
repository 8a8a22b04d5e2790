// Hosts in text: what a link's visible text claims (phishing net), and every host a body mentions
// (URL blocklist look-ups, issue 5 item 5). Hosts come out lower-case and punycoded (WHATWG URL),
// so a Cyrillic "pаypal.com" is "xn--pypal-4ve.com" and never equal to "paypal.com".

// ISO 3166 country-code TLDs (IANA root zone): a bare "name.xx" in text is a domain when xx is one.
const CC_TLDS = new Set(
  (
    'ac ad ae af ag ai al am ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bm bn bo br bs bt bw by bz ca cc cd cf cg ch ' +
    'ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk dm do dz ec ee eg er es et eu fi fj fk fm fo fr ga gb gd ge gf gg gh gi gl gm ' +
    'gn gp gq gr gs gt gu gw gy hk hm hn hr ht hu id ie il im in io iq ir is it je jm jo jp ke kg kh ki km kn kp kr kw ky kz la lb ' +
    'lc li lk lr ls lt lu lv ly ma mc md me mg mh mk ml mm mn mo mp mq mr ms mt mu mv mw mx my mz na nc ne nf ng ni nl no np nr nu ' +
    'nz om pa pe pf pg ph pk pl pm pn pr ps pt pw py qa re ro rs ru rw sa sb sc sd se sg sh si sk sl sm sn so sr ss st su sv sx sy ' +
    'sz tc td tf tg th tj tk tl tm tn to tr tt tv tw tz ua ug uk us uy uz va vc ve vg vi vn vu wf ws ye yt za zm zw'
  ).split(' '),
);

// Generic TLDs common in mail. Not the whole root zone: "file.pdf" or "Mr.Smith" must not read as a
// domain. ".zip" and ".mov" are left out on purpose: as bare words they are file names far more often.
const G_TLDS = new Set(
  (
    'com net org edu gov mil int info biz name pro mobi asia tel travel jobs aero coop museum app dev page xyz online site top ' +
    'shop store tech club vip live email cloud link click website space fun icu win bid loan work today news blog bank money ' +
    'finance support help services solutions company center digital network media agency global world life group systems ' +
    'software security login account secure services host press design studio cc ltd inc llc gmbh amazon google apple microsoft ' +
    'paypal bond cfd sbs rest beauty hair skin quest buzz monster cyou lol mom ink one best'
  ).split(' '),
);

// Second-level labels under which a ccTLD registers names (co.uk, com.au, ne.jp, gob.mx…).
const SECOND_LEVEL = new Set('co com net org gov edu ac or ne go gob mil nic ltd plc sch nom gen biz info'.split(' '));

const IPV4 = /^\d{1,3}(?:\.\d{1,3}){3}$/;

/** Lower-case, punycoded host of an http(s)/ftp URL; null for anything else (mailto:, relative). */
export function hostOfUrl(url: string): string | null {
  try {
    const u = new URL(url.trim());
    if (!['http:', 'https:', 'ftp:'].includes(u.protocol) || !u.hostname) return null;
    return u.hostname.replace(/\.$/, '');
  } catch {
    return null;
  }
}

/** Normalises a host written in text (IDN, case, trailing dot) the way a browser would. */
export function normaliseHost(host: string): string | null {
  return hostOfUrl(`http://${host}/`);
}

/**
 * Registrable domain by a heuristic: the last two labels, or three under a ccTLD second level
 * (example.co.uk). Without the Public Suffix List it merges private suffixes (a.github.io and
 * b.github.io look alike); callers with a PSL library inject their own (DisarmOptions).
 */
export function registrableDomain(host: string): string {
  const h = host
    .toLowerCase()
    .replace(/\.$/, '')
    .replace(/^www\./, '');
  if (IPV4.test(h) || h.includes(':') || h.startsWith('[')) return h;
  const labels = h.split('.');
  if (labels.length <= 2) return h;
  const tld = labels.at(-1)!;
  const second = labels.at(-2)!;
  const n = tld.length === 2 && SECOND_LEVEL.has(second) ? 3 : 2;
  return labels.slice(-n).join('.');
}

const SCHEME_URL = /\b(?:https?|ftp):\/\/([^\s/?#<>"'\\]+)/giu;
const WWW_HOST = /(?<![\p{L}\p{N}.@-])(www\.(?:[\p{L}\p{N}-]+\.)+[\p{L}]{2,24})(?![\p{L}\p{N}-])/giu;
const BARE_HOST = /(?<![\p{L}\p{N}.@/-])((?:[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?\.)+([\p{L}]{2,24}))(?![\p{L}\p{N}@-]|\.[\p{L}\p{N}])/giu;

function authorityHost(authority: string): string | null {
  const afterUser = authority.slice(authority.lastIndexOf('@') + 1);
  return normaliseHost(afterUser);
}

function knownTld(tld: string): boolean {
  const t = tld.toLowerCase();
  return CC_TLDS.has(t) || G_TLDS.has(t) || t.startsWith('xn--');
}

interface HostHit {
  index: number;
  host: string;
}

/** Every host in a text, in order: scheme URLs, www. names, then bare names with a known TLD. */
function hostHits(text: string, max: number): HostHit[] {
  const hits: HostHit[] = [];
  const taken: [number, number][] = [];
  const free = (s: number, e: number) => !taken.some(([a, b]) => s < b && e > a);
  const add = (index: number, end: number, host: string | null) => {
    if (host && hits.length < max && free(index, end)) {
      hits.push({ index, host });
      taken.push([index, end]);
    }
  };
  for (const m of text.matchAll(SCHEME_URL)) add(m.index, m.index + m[0].length, authorityHost(m[1]));
  for (const m of text.matchAll(WWW_HOST)) add(m.index, m.index + m[0].length, normaliseHost(m[1]));
  for (const m of text.matchAll(BARE_HOST)) {
    if (knownTld(m[2])) add(m.index, m.index + m[0].length, normaliseHost(m[1]));
  }
  return hits.sort((a, b) => a.index - b.index);
}

/** The host a link's visible text shows, if it shows one (a URL or a bare domain). */
export function claimedHost(linkText: string): string | null {
  const text = linkText.normalize('NFKC').replace(/\s+/g, ' ').trim();
  if (text.length === 0 || text.length > 2048) return null;
  return hostHits(text, 50)[0]?.host ?? null;
}

/** Hosts mentioned in plain text, unique, in order of appearance. */
export function hostsInText(text: string, max = 500): string[] {
  return [...new Set(hostHits(text.normalize('NFKC'), max).map((h) => h.host))];
}
