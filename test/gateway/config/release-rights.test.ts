// The release rights keys of the config file: defaults, a per-domain patch, and refusals that
// name the key (gateway/config/release-rights.ts).
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../gateway/config/load.ts';
import { MINIMAL_CONFIG, refusal } from '../../support/config.ts';

describe('release rights in the config', () => {
  it('defaults to the built-in table and takes a global and a per-domain patch', () => {
    expect(parseConfig(MINIMAL_CONFIG, 'mailmoat.yaml').console.releaseRights).toEqual({});
    const text = `${MINIMAL_CONFIG}    releaseRights:\n      spam: { release: admin }\nconsole:\n  releaseRights:\n    virus: { preview: recipient, release: superadmin }\n`;
    const config = parseConfig(text, 'mailmoat.yaml');
    expect(config.console.releaseRights).toEqual({ virus: { preview: 'recipient', release: 'superadmin' } });
    expect(config.domains['example.test']!.releaseRights).toEqual({ spam: { release: 'admin' } });
  });

  it('refuses an unknown class, right or level, naming the key', () => {
    expect(refusal(`${MINIMAL_CONFIG}console:\n  releaseRights:\n    viruses: { release: admin }\n`)).toMatch(/console\.releaseRights.*viruses/s);
    expect(refusal(`${MINIMAL_CONFIG}console:\n  releaseRights:\n    virus: { forward: admin }\n`)).toMatch(/console\.releaseRights\.virus.*forward/s);
    expect(refusal(`${MINIMAL_CONFIG}console:\n  releaseRights:\n    virus: { release: everyone }\n`)).toMatch(/console\.releaseRights\.virus\.release/);
  });
});
