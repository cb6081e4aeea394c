// Control-plane errors: thrown, with a stable code and a message naming the
// offending file, key or argument. The packet path never throws; it counts.

export type OtusErrorCode =
  | 'OTUS_ERR_NOT_A_CAPTURE'
  | 'OTUS_ERR_CAPTURE_IO'
  | 'OTUS_ERR_BAD_ARGUMENT'
  | 'OTUS_ERR_CONFIG'
  | 'OTUS_ERR_SYSCALL'
  | 'OTUS_ERR_FILTER'
  | 'OTUS_ERR_UNSUPPORTED';

export class OtusError extends Error {
  readonly code: OtusErrorCode;
  constructor(code: OtusErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OtusError';
    this.code = code;
  }
}
