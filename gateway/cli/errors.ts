// The command line's error vocabulary: a UsageError is the user's to fix (a missing id, a domain
// that is not hosted, an operation refused): one line on stderr, exit 1, never a stack trace.
// Wrong arguments (an unknown option or command, a missing argument) are commander's and exit 2.
export class UsageError extends Error {}
