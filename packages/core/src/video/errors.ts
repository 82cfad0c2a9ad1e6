// One error class for everything that goes wrong reading or writing media, so
// callers can tell a bad file or a missing encoder from a bug with instanceof.

export class VideoIOError extends Error {
  override name = "VideoIOError";
  constructor(
    message: string,
    /** The file or folder involved, when there is one. */
    readonly path?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
