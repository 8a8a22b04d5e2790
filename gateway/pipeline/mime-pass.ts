// One MIME pass over a message for every analyser that reads its structure: the walk (part facts
// for the attachment rules: types, names, sizes, zip listings) and the text scan (hosts for the
// URL checks, the HTML disarm prediction) take the same splitter's chunks, so the message is
// split and its parts numbered once instead of once per analyser.
//
// Each consumer keeps the outcome it had with a splitter of its own: a bound the walk hits ends
// the walk ("malformed") while the text scan goes on to the end; a structure the splitter refuses
// ends both (the walk says malformed, the text scan returns what it found up to there). Only an
// error of the input stream rejects.
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import type { SplitterChunk } from '@zone-eu/mailsplit';
import type { MessageFacts } from '../../scanners/facts.ts';
import { walkConsumer, type WalkConsumer, type WalkLimits } from '../../scanners/mime-walk.ts';
import { createSplitter } from '../../scanners/splitter.ts';
import { TextConsumer, type TextScanOptions, type TextScanResult } from './text-scan.ts';

export interface MimePassOptions {
  /** Walk the parts (attachment rules); absent: no walk. */
  walk?: Partial<WalkLimits> & { maxParts: number; maxHeaderBytes: number };
  /** Scan the text parts (URLs, HTML); absent: no text scan. Its splitter bounds are the walk's when both run (both come from config.mime). */
  text?: TextScanOptions;
}

/** A message for the pass: its bytes (a small message read once) or its spool file. Plain data: it crosses to a worker thread. */
export type MessageSource = { bytes: Uint8Array } | { file: string };
/** The options without the one function (registrableDomain), as a worker thread takes them. */
export type PlainMimePassOptions = Omit<MimePassOptions, 'text'> & { text?: Omit<TextScanOptions, 'registrableDomain'> };

export function sourceStream(source: MessageSource): Readable {
  if ('file' in source) return createReadStream(source.file);
  const b = source.bytes;
  return Readable.from([Buffer.from(b.buffer, b.byteOffset, b.byteLength)], { objectMode: false });
}

/** What mimePass reads: the bytes themselves (no stream around them), or a stream of the file. */
export const passInput = (source: MessageSource): Readable | Uint8Array => ('file' in source ? createReadStream(source.file) : source.bytes);

export interface MimePassResult {
  facts?: MessageFacts;
  text?: TextScanResult;
}

/**
 * A message's bytes go to the splitter as the one chunk a stream of them would have given it
 * (the same split): a stream around bytes already in memory only added its own machinery.
 */
export async function mimePass(input: Readable | Uint8Array, o: MimePassOptions): Promise<MimePassResult> {
  const walk: WalkConsumer | undefined = o.walk ? walkConsumer(o.walk) : undefined;
  const text = o.text ? new TextConsumer(o.text) : undefined;
  const limits = o.walk ?? o.text;
  const stream = input instanceof Uint8Array ? null : input;
  if (!limits) {
    stream?.destroy();
    return {};
  }
  const live = new Map<WalkConsumer | TextConsumer, (err: Error) => void>();
  if (walk) live.set(walk, (err) => walk.fail(err));
  if (text) live.set(text, () => {});
  const splitter = createSplitter(limits);
  let inputError: Error | undefined;
  if (stream) {
    stream.on('error', (e) => {
      inputError = e;
      splitter.destroy(e);
    });
    stream.pipe(splitter);
  } else {
    const b = input as Uint8Array;
    if (b.byteLength > 0) splitter.write(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
    splitter.end();
  }
  const stop = () => {
    stream?.unpipe(splitter);
    stream?.destroy();
    splitter.destroy();
  };
  try {
    for await (const obj of splitter as AsyncIterable<SplitterChunk>) {
      for (const [c, fail] of live) {
        try {
          await c.take(obj);
        } catch (err) {
          if (inputError) throw inputError;
          fail(err as Error);
          live.delete(c);
        }
      }
      if (live.size === 0) break;
    }
    for (const [c, fail] of live) {
      try {
        await c.end();
      } catch (err) {
        if (inputError) throw inputError;
        fail(err as Error);
      }
    }
  } catch (err) {
    if (inputError) throw inputError;
    for (const fail of live.values()) fail(err as Error);
  } finally {
    stop();
  }
  return { ...(walk ? { facts: walk.facts } : {}), ...(text ? { text: text.result() } : {}) };
}
