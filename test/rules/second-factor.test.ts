// When a login needs the second factor: a table of cases (rules/second-factor.ts).
import { describe, expect, it } from 'vitest';
import { secondStep, type SecondFactorFacts } from '../../rules/second-factor.ts';

describe('secondStep', () => {
  const cases: [Partial<SecondFactorFacts>, ReturnType<typeof secondStep>][] = [
    [{ enrolled: true }, 'code'],
    [{ enrolled: true, requiredFor: ['superadmin'] }, 'code'],
    [{ enrolled: false }, 'none'],
    [{ enrolled: false, requiredFor: ['superadmin'] }, 'enrol'],
    [{ enrolled: false, requiredFor: ['domainadmin'] }, 'none'],
    [{ enrolled: false, requiredFor: ['superadmin'], external: true }, 'none'],
    [{ enrolled: true, external: true }, 'none'],
  ];
  it.each(cases)('%o → %s', (facts, expected) => {
    expect(secondStep({ role: 'superadmin', requiredFor: [], enrolled: false, external: false, ...facts })).toBe(expected);
  });
});
