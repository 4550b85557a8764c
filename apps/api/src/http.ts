/** HTTP status for a job failure code stored by a worker. */
export function statusForFailure(code: string): number {
  switch (code) {
    case 'ERR_BALLAST_INVALID_OPTION':
      return 400;
    case 'ERR_BALLAST_IMAGE_UNSUPPORTED':
      return 415;
    case 'ERR_BALLAST_IMAGE_TOO_LARGE':
      return 413;
    case 'ERR_BALLAST_IMAGE_CORRUPT':
    case 'ERR_BALLAST_IMAGE_TIMEOUT':
    case 'ERR_BALLAST_IMAGE_FAILED':
      return 422;
    default:
      return 500;
  }
}
