// Reading a spool file as a stream. createReadStream opens the file later and reports a missing
// one (a local copy evicted on a node of several machines) as an 'error' event, which is uncaught
// when its consumer attaches listeners only after some I/O of its own (the clamd client connects
// first): the process used to die of it. Opening first turns that into a rejection on the job's
// own error path, and the open descriptor keeps the bytes readable even if the file is removed.
import { promises as fs } from 'node:fs';
import type { Readable } from 'node:stream';

export async function openSpoolFile(file: string): Promise<Readable> {
  const handle = await fs.open(file, 'r');
  return handle.createReadStream(); // autoClose: the handle is closed at the end or on an error
}
