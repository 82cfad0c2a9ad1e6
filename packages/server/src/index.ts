// The HTTP server. For now it answers health and device queries; the video API
// (jobs, queue, progress) is added on top of this same server.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { cudaStatus, devices } from "@tessera/native";

export interface ServerOptions {
  host?: string;
  port?: number;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

export function handle(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? "/", "http://localhost");
  if (req.method !== "GET" && req.method !== "HEAD") {
    send(res, 405, { error: { message: `method ${req.method} is not allowed on ${url.pathname}; use GET` } });
    return;
  }
  switch (url.pathname) {
    case "/healthz":
      send(res, 200, { status: "ok" });
      return;
    case "/v1/devices":
      send(res, 200, {
        data: devices().map((d) => ({ ...d.info(), memory: d.memoryStats() })),
        cuda: cudaStatus(),
      });
      return;
    default:
      send(res, 404, { error: { message: `no route ${url.pathname}; see /healthz and /v1/devices` } });
  }
}

/** Starts the server; resolves once it listens (port 0 picks a free port). */
export async function startServer(opts: ServerOptions = {}): Promise<{ server: Server; url: string }> {
  const server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 8080, opts.host ?? "127.0.0.1", () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : opts.port;
  return { server, url: `http://${opts.host ?? "127.0.0.1"}:${port}` };
}
