// Per hosted domain: the addresses users send spam reports to (issue 8, gateway/reports/). Mail to
// them is taken by the gateway, learned from and never delivered downstream.
import { z } from 'zod';

const localPart = z
  .string()
  .regex(/^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+$/, 'expected the local part of an address (the part before @)')
  .transform((s) => s.toLowerCase());

export const reportsSchema = z
  .object({
    /** false: no report addresses for this domain (mail to them is handled like any other). */
    enabled: z.boolean().default(true),
    addresses: z
      .object({
        /** Local parts whose mail is learned as spam ("spam that got through"). */
        spam: z.array(localPart).default(['reportspam']),
        /** Local parts whose mail is learned as ham ("this was not spam"). */
        ham: z.array(localPart).default(['notspam']),
      })
      .strict()
      .prefault({}),
    /** Who may report. Anyone else is refused at RCPT (550 5.7.1); nothing from outsiders is ever learned. */
    trust: z
      .object({
        /** A user authenticated on the submission listener. */
        authenticated: z.boolean().default(true),
        /** A client in `checks.trusted.networks` (the domain's own mail servers). */
        trustedNetworks: z.boolean().default(true),
        /**
         * A sender address in this domain (or a subdomain) whose SPF passes (known at RCPT) or whose
         * DKIM signature passes for that domain (known only after DATA: such a report is accepted
         * and then recorded as refused, not learned, when no aligned signature passes).
         */
        alignedSenders: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
    /** Add the sender (From) of each reported spam to the reporter's own block list. */
    addSenderToBlockList: z.boolean().default(false),
    /** Send the reporter a short acknowledgement saying what was learned. */
    acknowledge: z.boolean().default(true),
    /** At most this many messages are learned from one report. */
    maxMessages: z.number().int().positive().default(50),
  })
  .strict();

export type ReportsConfig = z.infer<typeof reportsSchema>;
