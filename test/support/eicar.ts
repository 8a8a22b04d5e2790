// The EICAR anti-virus test file (harmless by design), assembled at run time: the 68-byte
// string never sits in the repository in one piece, so virus scanners on developer machines do
// not quarantine this source file.
const FIRST_HALF = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EIC';
const SECOND_HALF = 'AR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';

export const EICAR: string = FIRST_HALF + SECOND_HALF;

export function eicarBytes(): Buffer {
  return Buffer.from(EICAR, 'latin1');
}
