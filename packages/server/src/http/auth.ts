// API keys and the per-key rate limit, as one onRequest hook on the routes that
// declare `config: { auth: true }`. It runs before the body is read, so an
// unauthenticated client cannot make the server store an upload.
import type { FastifyInstance } from "fastify";
import type { Metrics } from "../metrics.js";
import { RateLimiter, type RateLimitOptions } from "../ratelimit.js";
import type { Store } from "../store.js";
import { ApiError } from "./errors.js";

declare module "fastify" {
  interface FastifyRequest {
    /** The API key's id, or null in open mode. */
    keyId: string | null;
  }
  interface FastifyContextConfig {
    /** Routes under /v1 that need a key (when any exists) and count against the rate limit. */
    auth?: boolean;
  }
}

/** The route option that puts a route behind the key check and the rate limit. */
export const AUTH = { auth: true } as const;

export interface AuthOptions {
  store: Store;
  metrics: Metrics;
  /** Per API key (per client address in open mode); false turns it off. */
  rateLimit: RateLimitOptions | false;
  /**
   * Serve without keys even though keys were made once (all are revoked now). Without
   * it, revoking the last key locks the API until a key is made: open mode is a choice,
   * never what revoking silently falls back to.
   */
  open?: boolean;
}

/**
 * With no key ever made the server is open: every request passes with keyId null. Once
 * a key exists, auth routes need `Authorization: Bearer <key>` and see that key's jobs;
 * once keys existed and all are revoked, they are refused unless `open` was asked for.
 */
export function installAuth(app: FastifyInstance, o: AuthOptions): void {
  const { store, metrics } = o;
  const limiter = o.rateLimit === false ? null : new RateLimiter(o.rateLimit);
  const touched = new Map<string, number>();
  app.decorateRequest("keyId", null);
  app.addHook("onRequest", async (req, reply) => {
    if (!req.routeOptions.config.auth) return;
    const header = req.headers.authorization;
    const keys = store.keyState();
    if (keys === "revoked" && !o.open)
      throw new ApiError(
        401,
        "no_active_key",
        "every API key of this server has been revoked; make one with `tessera keys create`, " +
          "or restart the server with --open to serve without keys",
      );
    if (keys === "active") {
      const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
      const keyId = m ? store.keyIdFor(m[1] as string) : null;
      if (!keyId) {
        reply.header("www-authenticate", 'Bearer realm="tessera"');
        throw new ApiError(
          401,
          header ? "invalid_api_key" : "missing_api_key",
          header ? "the API key is not valid (revoked, or never issued)" : "send Authorization: Bearer <key>",
        );
      }
      req.keyId = keyId;
      // For `tessera keys list`; at most one write a minute per key.
      const now = Date.now();
      if ((touched.get(keyId) ?? 0) < now - 60_000) {
        touched.set(keyId, now);
        store.touchKey(keyId);
      }
    }
    if (limiter) {
      const wait = limiter.take(req.keyId ?? `ip:${req.ip}`);
      if (wait > 0) {
        metrics.rejected("rate_limited");
        throw new ApiError(429, "rate_limited", `too many requests; retry in ${wait} s`, null, {
          "retry-after": String(wait),
        });
      }
    }
  });
}
