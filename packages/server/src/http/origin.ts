// Browser-origin safety, for open mode above all (where no key stands between a web
// page and the API):
// - Host: a request must name an address this server serves (a loopback name, the
//   address it listens on, or — listening on every interface — one of the machine's
//   addresses or its host name, or a --public-url). A page on attacker.example whose
//   name is re-pointed at 127.0.0.1 (DNS rebinding) sends Host: attacker.example and is
//   refused, so it can neither read nor delete jobs.
// - Cross-site writes: POST and DELETE from a page of another origin (a form post, a
//   no-cors fetch) are refused by their Origin, or by Sec-Fetch-Site where a browser
//   sends no Origin. curl and SDK clients send neither and pass; the bundled page is
//   same-origin and passes.
import { hostname, networkInterfaces } from "node:os";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Metrics } from "../metrics.js";
import { ApiError } from "./errors.js";

export interface OriginOptions {
  /** The address the server listens on ("127.0.0.1", "0.0.0.0", "::", a name…). */
  host: string;
  /** URLs the server is reached at besides its own addresses (a reverse proxy's, a DNS name). */
  publicUrls: readonly string[];
}

const WILDCARD = new Set(["0.0.0.0", "::", "0:0:0:0:0:0:0:0", ""]);
const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);
// Interfaces change (DHCP, a VPN coming up): looked up again at most this often on a miss.
const INTERFACES_TTL_MS = 10_000;

/** The host part of a Host header, lowercased, without port or IPv6 brackets. */
export function hostOf(header: string): string {
  const h = header.trim().toLowerCase();
  if (h.startsWith("[")) return h.slice(1, h.indexOf("]") > 0 ? h.indexOf("]") : undefined);
  const colon = h.indexOf(":");
  // More than one colon without brackets: a bare IPv6 address, no port.
  if (colon >= 0 && h.indexOf(":", colon + 1) < 0) return h.slice(0, colon);
  return h;
}

function isLoopbackName(h: string): boolean {
  return (
    h === "localhost" ||
    h.endsWith(".localhost") ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) ||
    h === "::1" ||
    h === "0:0:0:0:0:0:0:1"
  );
}

export class OriginPolicy {
  readonly #fixed = new Set<string>();
  readonly #publicOrigins = new Set<string>();
  readonly #wildcard: boolean;
  #interfaces = new Set<string>();
  #interfacesAt = Number.NEGATIVE_INFINITY;

  constructor(o: OriginOptions) {
    const bound = hostOf(o.host);
    this.#wildcard = WILDCARD.has(bound);
    if (!this.#wildcard) this.#fixed.add(bound);
    for (const u of o.publicUrls) {
      const url = new URL(u);
      this.#fixed.add(hostOf(url.host));
      this.#publicOrigins.add(url.origin.toLowerCase());
    }
    if (this.#wildcard) {
      const name = hostname().toLowerCase();
      this.#fixed.add(name);
      this.#fixed.add(`${name}.local`);
    }
  }

  /** Whether a request's Host names this server. An absent Host (HTTP/1.0) passes. */
  hostAllowed(header: string | undefined): boolean {
    if (header === undefined) return true;
    const h = hostOf(header);
    if (isLoopbackName(h) || this.#fixed.has(h)) return true;
    if (!this.#wildcard) return false;
    return this.#interfaceAddresses(Date.now() - this.#interfacesAt > INTERFACES_TTL_MS).has(h);
  }

  /** Why a state-changing request is cross-site, or null when it is not. */
  crossSite(req: FastifyRequest): string | null {
    const origin = req.headers.origin;
    if (origin !== undefined) {
      if (origin === "null") return "it comes from an opaque origin (a sandboxed page or a file)";
      let u: URL;
      try {
        u = new URL(origin);
      } catch {
        return `its Origin '${origin.slice(0, 100)}' is not a URL`;
      }
      if (this.#publicOrigins.has(u.origin.toLowerCase())) return null;
      const host = req.headers.host?.toLowerCase();
      if (host !== undefined && u.host.toLowerCase() === host) return null;
      return `it comes from a page at ${u.origin}`;
    }
    const site = req.headers["sec-fetch-site"];
    if (site === "cross-site" || site === "same-site") return `the browser says it is ${site}`;
    return null;
  }

  #interfaceAddresses(refresh: boolean): Set<string> {
    if (refresh) {
      const s = new Set<string>();
      for (const list of Object.values(networkInterfaces()))
        for (const a of list ?? []) s.add(a.address.toLowerCase().replace(/%.*$/, ""));
      this.#interfaces = s;
      this.#interfacesAt = Date.now();
    }
    return this.#interfaces;
  }
}

/** The onRequest hook: Host on every route but /healthz (probes use whatever name they like), cross-site writes. */
export function installOriginChecks(app: FastifyInstance, policy: OriginPolicy, metrics: Metrics): void {
  app.addHook("onRequest", async (req) => {
    const path = req.url.split("?")[0];
    if (path !== "/healthz" && !policy.hostAllowed(req.headers.host)) {
      metrics.rejected("bad_host");
      throw new ApiError(
        421,
        "host_not_allowed",
        `this server does not answer for the host '${String(req.headers.host).slice(0, 100)}'; ` +
          "if it is reached under that name (a proxy, a DNS name), start it with --public-url naming it",
        "host",
        // The body (an upload, say) is never read: the connection cannot be reused.
        { connection: "close" },
      );
    }
    if (UNSAFE.has(req.method)) {
      const why = policy.crossSite(req);
      if (why) {
        metrics.rejected("cross_site");
        throw new ApiError(
          403,
          "cross_site_request",
          `cross-site requests are refused (${why}); submit from this server's own page, or from a client that is not a browser page`,
          "origin",
          { connection: "close" },
        );
      }
    }
  });
}
