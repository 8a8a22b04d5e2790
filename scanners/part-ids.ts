// One naming of MIME parts shared by the walk (facts) and the rewrite (disarm findings), so that a
// finding "part 2.1" points at the same part in the report, the quarantine view and the rewrite.
// IMAP-style (RFC 3501 §6.4.5): children of a multipart are numbered from 1; a single-part message
// is part "1"; the parts of an inline message/rfc822 are numbered under the message/rfc822 part.

import type { MimeNode } from '@zone-eu/mailsplit';

interface Slot {
  path: number[];
  children: number;
}

export class PartNumberer {
  #slots = new WeakMap<MimeNode, Slot>();

  /** Assigns (on first sight, in document order) and returns the node's position path. */
  #slot(node: MimeNode): Slot {
    let slot = this.#slots.get(node);
    if (slot) return slot;
    const parent = node.parentNode;
    if (!parent) slot = { path: [], children: 0 };
    else {
      const p = this.#slot(parent);
      // The root of an embedded message stands in for its message/rfc822 container.
      slot = parent.messageNode ? { path: p.path, children: 0 } : { path: [...p.path, ++p.children], children: 0 };
    }
    this.#slots.set(node, slot);
    return slot;
  }

  /** Records a node; call for every node in the order the splitter emits them. */
  see(node: MimeNode): void {
    this.#slot(node);
  }

  /** Part id of a leaf node: "1" for a single-part message, "2.1" for a nested one. */
  idOf(node: MimeNode): string {
    const path = this.#slot(node).path;
    const inEmbeddedRoot = node.parentNode && node.parentNode.messageNode;
    if (path.length === 0 || inEmbeddedRoot) return [...path, 1].join('.');
    return path.join('.');
  }
}

/** Number of MIME containers above a node. */
export function depthOf(node: MimeNode): number {
  let d = 0;
  for (let p = node.parentNode; p; p = p.parentNode) d++;
  return d;
}
