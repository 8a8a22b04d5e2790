// The release rights table in the config file: `console.releaseRights` (global) and
// `domains.<d>.releaseRights` (that domain's patch over it). The built-in defaults and the decision
// are in rules/release-rights.ts; a key left out keeps the default.
//
//   console:
//     releaseRights:
//       spam: { release: admin }        # only administrators release spam
//       virus: { preview: recipient }   # end users may look at a virus's (sanitised) text
import { z } from 'zod';
import { RIGHT_LEVELS, RIGHTS_CLASSES, type RightLevel, type RightsPatch } from '../../rules/release-rights.ts';

const level = z.enum(RIGHT_LEVELS as [RightLevel, ...RightLevel[]]);

const classRights = z
  .object({
    /** Who may release it: recipient (the end user and every admin), admin (domain admin, superadmin) or superadmin. */
    release: level.optional(),
    /** Who may download the raw message. */
    download: level.optional(),
    /** Who may see its text and HTML preview. */
    preview: level.optional(),
  })
  .strict();

export const releaseRightsSchema = z
  .object(
    Object.fromEntries(RIGHTS_CLASSES.map((c) => [c, classRights.optional()])) as Record<(typeof RIGHTS_CLASSES)[number], z.ZodOptional<typeof classRights>>,
  )
  .strict() as unknown as z.ZodType<RightsPatch>;
