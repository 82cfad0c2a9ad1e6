// The web page at GET /: a form to submit videos, the job list with live progress,
// and a player for finished videos. Plain HTML, CSS and one ES module, served from
// strings (no build step, nothing to copy into dist), under a strict
// Content-Security-Policy: scripts and styles only from this origin, no inline
// script or style, media and images from this origin or blob: (used when an API key
// is set, since a <video> cannot send an Authorization header).
import { createHash } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { CLIENT_JS } from "./client.js";
import { PAGE_CSS, PAGE_HTML } from "./page.js";

export const WEB_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' blob: data:",
  "media-src 'self' blob:",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join("; ");

interface Asset {
  body: string;
  type: string;
  etag: string;
}

function asset(body: string, type: string): Asset {
  return { body, type, etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"` };
}

export const WEB_ASSETS: Record<string, Asset> = {
  "/": asset(PAGE_HTML, "text/html; charset=utf-8"),
  "/web/app.js": asset(CLIENT_JS, "text/javascript; charset=utf-8"),
  "/web/app.css": asset(PAGE_CSS, "text/css; charset=utf-8"),
};

export interface WebPageOptions {
  /** Leave the page out (the API alone). Default: served. */
  enabled?: boolean;
}

/** Adds GET / and its two assets. None of them needs a key: the page holds no data. */
export function registerWebPage(app: FastifyInstance, o: WebPageOptions = {}): void {
  if (o.enabled === false) return;
  for (const [url, a] of Object.entries(WEB_ASSETS)) {
    app.get(url, { schema: { hide: true } }, (req: FastifyRequest, reply: FastifyReply) => {
      reply.headers({
        "content-type": a.type,
        "content-security-policy": WEB_CSP,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "x-frame-options": "DENY",
        "cache-control": "no-cache",
        etag: a.etag,
      });
      if (req.headers["if-none-match"] === a.etag) return reply.code(304).send();
      return reply.send(a.body);
    });
  }
}
