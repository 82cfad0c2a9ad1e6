// Video and image I/O: writers (mp4/webm through ffmpeg; gif, y4m and PNG
// folders built in), readers for conditioning inputs, and tensor conversions.
export { VideoIOError } from "./errors.js";
export type { Fit } from "./ffmpeg.js";
export { checkFrames as checkVideoFrames, type RgbImage, type VideoFrames } from "./frames.js";
export { encodeGif, type GifDither, type GifOptions, type GifPalette } from "./gif.js";
export {
  type ContactSheetOptions,
  FRAME_FOLDER_META,
  type ReadImageOptions,
  type ReadVideoOptions,
  readImage,
  readVideo,
  type VideoFormat,
  type WriteResult,
  type WriteVideoOptions,
  writeContactSheet,
  writeImage,
  writeVideo,
} from "./io.js";
export { encodePng } from "./png.js";
export { DEFAULT_VIDEO_FPS, framesFromTensor, tensorFromFrames } from "./tensor.js";
export { readY4m, writeY4m, type Y4mChroma } from "./y4m.js";
