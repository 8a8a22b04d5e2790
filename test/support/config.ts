// Config test helpers: the smallest valid file, and the refusal a file gets.
import { expect } from 'vitest';
import { ConfigError, parseConfig } from '../../gateway/config/load.ts';

export const MINIMAL_CONFIG = 'hostname: mx.example.test\ndataDir: data\ndomains:\n  example.test:\n    downstream: [{ host: 10.0.0.5 }]\n';

/** The message a config text is refused with (fails the test when it is accepted). */
export function refusal(text: string): string {
  try {
    parseConfig(text, 'mailmoat.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('config was accepted');
}
