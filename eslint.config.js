// ESLint: typescript-eslint's recommended rules (the ones that need no type information, so a run
// stays a matter of seconds on two cores; `tsc --noEmit` does the type checking) and the floors of
// the house as one import rule. Run by `npm test` and `npm run lint`.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import boundaries from 'eslint-plugin-boundaries';

// The floors, bottom first. A floor may import the floors below it, never one above: a policy
// decision stays testable without a socket, and the SMTP front and workers never load the console.
// eslint-plugin-boundaries rather than core no-restricted-imports: it resolves every import to the
// file it names, so a floor is a folder whatever `../` spelling reaches it, and dynamic import()
// is checked too; the table below reads like the floor plan.
const elements = [
  // Plain types and pure helpers every floor shares: IP address forms, the DNS port.
  { type: 'core', partialMatch: false, pattern: 'core/**' },
  // Content analysis: engine clients (clamd, spamd, DNSBL through the DNS port), MIME walking, HTML
  // disarming, and the facts and report types they produce.
  { type: 'scanners', partialMatch: false, pattern: 'scanners/**' },
  // Every decision, as pure functions over plain data (facts in, decision out).
  { type: 'rules', partialMatch: false, pattern: 'rules/**' },
  // SMTP front, workers, stores, config, composition roots: where sockets, disks and DNS live.
  { type: 'gateway', partialMatch: false, pattern: 'gateway/**' },
  // The web console.
  { type: 'console', partialMatch: false, pattern: 'quarantine-ui/**' },
  { type: 'bench', partialMatch: false, pattern: 'bench/**' },
  { type: 'test', partialMatch: false, pattern: 'test/**' },
];
// The gateway files that reach the console on purpose (why: see the `entry` policy below).
const entryFiles = [
  { category: 'entry', pattern: ['gateway/cli.ts', 'gateway/roles.ts', 'gateway/cli/other.ts', 'gateway/cli/quarantine.ts', 'gateway/learner/cli.ts'] },
];

// Who may import whom ("entry" is listed above; everything else is disallowed).
const may = (from, to, kind) => ({
  from: { element: { type: from } },
  allow: { to: { element: { type: to } }, ...(kind ? { dependency: { kind } } : {}) },
});
const floors = [
  may('core', ['core']),
  may('scanners', ['core', 'scanners']),
  may('rules', ['core', 'rules']),
  // rules decide on what the scanners found: they may name the scanners' report and facts types,
  // but never load a scanner (`import type` only), so a rule runs with no engine client behind it.
  may('rules', ['scanners'], 'type'),
  may('gateway', ['core', 'scanners', 'rules', 'gateway']),
  // The entry points and why they reach the console: `mailmoat users|digest` (cli.ts, cli/other.ts)
  // run the console's commands, the learner CLI reuses its CliError, `mailmoat quarantine` asks its
  // release-rights check (cli/quarantine.ts), and roles.ts starts the console for `start`/`console`
  // (a dynamic import, so the smtp and worker roles never load it).
  { from: { file: { categories: 'entry' } }, allow: { to: { element: { type: 'console' } } } },
  may('console', ['core', 'scanners', 'rules', 'gateway', 'console']),
  may(['bench', 'test'], ['core', 'scanners', 'rules', 'gateway', 'console', 'bench', 'test']),
];

export default tseslint.config(
  { ignores: ['node_modules/', 'var/', 'docs/', 'deploy/', 'bench/results/'] },
  // A disable comment that no longer disables anything is an error: it would hide the next real finding.
  { linterOptions: { reportUnusedDisableDirectives: 'error' } },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    plugins: { boundaries },
    settings: {
      'boundaries/elements': elements,
      'boundaries/files': entryFiles,
      'boundaries/include': ['core/**', 'scanners/**', 'rules/**', 'gateway/**', 'quarantine-ui/**', 'bench/**', 'test/**', '*.ts', '*.js'],
    },
    rules: {
      // Unused names are errors, except the ones written to be dropped: `_`-prefixed names and the
      // siblings of a rest element (`const { secret: _, ...shown } = o` leaves a key out on purpose).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      // A `let` read by a callback before its one assignment (an error handler set up first) must
      // stay a `let`: as a `const` the callback would hit the temporal dead zone.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // Off: matching control characters is this code's job (stripping them from untrusted header
      // text, list entries, replies and file names before they reach a log, a reply or a page).
      'no-control-regex': 'off',
      'boundaries/dependencies': [
        'error',
        { default: 'disallow', policies: floors, message: 'a floor may import only the floors below it (eslint.config.js)' },
      ],
    },
  },
  {
    // The SMTP front reaches the scan pipeline only through the ports it is given
    // (gateway/smtp/ports.ts, wired in gateway/roles.ts): a session's behaviour is what smtp/ and
    // rules/ say, and the pipeline can change behind the port.
    files: ['gateway/smtp/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: '(^|/)pipeline/', message: 'gateway/smtp reaches the pipeline only through gateway/smtp/ports.ts' }] },
      ],
    },
  },
  {
    // The console's browser script (the only JavaScript run outside Node).
    files: ['quarantine-ui/static/**/*.js'],
    languageOptions: { globals: { document: 'readonly', window: 'readonly', HTMLElement: 'readonly', HTMLInputElement: 'readonly' } },
  },
);
