// Command dispatch; kept apart from bin.ts so tests can call it in-process.
import { OpError, TesseraError } from "@tessera/native";
import { UsageError } from "./args.js";
import { createModelCommand } from "./commands/create-model.js";
import { devicesCommand } from "./commands/devices.js";
import { forwardCommand } from "./commands/forward.js";
import { generateCommand } from "./commands/generate.js";
import { infoCommand } from "./commands/info.js";
import { modelsCommand } from "./commands/models.js";
import { keysCommand, serveCommand } from "./commands/serve.js";
import { workerCommand } from "./commands/worker.js";

export const HELP = `tessera — text-to-video on a diffusion transformer over spacetime patches

usage:
  tessera devices [--json]            list the devices Tessera can run on
  tessera forward [options]           run one forward pass of a Wan-family transformer with random weights
      --device cpu|cuda[:N]  (cpu)    --config tiny|wan2.1-1.3b (tiny)   --layers N
      --frames N (5)   --size WxH (64x64)   --dtype f32|bf16|f16   --seed N   --json
  tessera generate PROMPT [options]   make a video from a text prompt with a Wan-family model folder
      -o FILE (out.mp4: .mp4/.webm need ffmpeg; .gif, .y4m, or DIR/ for PNG frames)
      --model DIR|NAME ($TESSERA_MODEL; default: the bundled demo model, tessera-world)
      --device cpu|cuda[:N]   --dtype f32|bf16|f16
      --vae-dtype f32|bf16|f16 (f32)   bf16 decodes on the GPU's implicit-GEMM conv kernel (faster, less memory)
      --no-rewrite                     send the prompt as typed (the demo model rewrites it onto its captions)
      --size WxH   --frames N (1+4k)   --steps N   --guidance X   --shift X   --scheduler unipc|euler
      --seed N   --negative TEXT   --fps N   --json
      --step-cache X                   reuse the deep blocks on steps whose first block changed under X (0.05-0.2; faster, off by default)
      --no-cuda-graph                  run every step op by op (default on a GPU: steps after the first replay a CUDA graph)
      --gpus N                         one generation over N GPUs (a process each, NCCL; text-to-video)
      --image FILE                     image-to-video: the image is the first frame
      --end-image FILE                 the clip ends on this image (with --image: interpolation)
      --video FILE [--strength X]      video-to-video from FILE (strength in (0,1], default 0.8)
      --video FILE --extend [--context N]   continue FILE; --loop ends where it began
  tessera models [PATH...] [--json]   list model folders under $TESSERA_MODELS (or ./models) and PATHs
  tessera info MODEL [--size WxH] [--frames N] [--dtype D] [--json]
                                      a model's configs, parameters, and a memory estimate
  tessera create-model DIR [--config tiny|wan2.1-1.3b] [--seed N] [--dtype D]
                                      write a random-weight model folder (diffusers layout) to try things with
  tessera serve [--port N] [--host H] [--data DIR] [--model DIR] [--device cpu|cuda] [--max-queue N]
                                      the HTTP video API (see /openapi.json); SIGTERM drains
      --queue redis://HOST:PORT        put jobs on a Redis queue for \`tessera worker\`s instead of running them here
  tessera worker --queue redis://HOST:PORT [--model DIR] [--device cpu|cuda] [--data DIR]
                                      take jobs from serve's queue (any number, any host; --data shared with serve)
  tessera keys create|list|revoke [--data DIR]   API keys for serve (none: open mode)
  tessera help                        this text
`;

export async function main(
  argv: string[],
  out = (s: string) => console.log(s),
  err = (s: string) => console.error(s),
) {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case "devices":
        return devicesCommand(rest, out);
      case "forward":
        return await forwardCommand(rest, out);
      case "generate":
        return await generateCommand(rest, out, err);
      case "models":
        return await modelsCommand(rest, out);
      case "info":
        return await infoCommand(rest, out, err);
      case "create-model":
        return await createModelCommand(rest, out, err);
      case "serve":
        return await serveCommand(rest, out, err);
      case "keys":
        return await keysCommand(rest, out);
      case "worker":
        return await workerCommand(rest, out, err);
      case undefined:
      case "help":
      case "--help":
      case "-h":
        out(HELP);
        return 0;
      default:
        throw new UsageError(`unknown command '${cmd}'; run 'tessera help'`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      err(`tessera: ${e.message}`);
      return 2;
    }
    if (e instanceof OpError || e instanceof TesseraError) {
      err(`tessera: ${e.message}`);
      return 1;
    }
    throw e;
  }
}
