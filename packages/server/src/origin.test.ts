// Browser-origin safety: requests naming a host this server does not serve (DNS
// rebinding) are refused, and so are cross-site writes (a form post or a no-cors
// fetch from another site), while curl, SDK clients and the server's own page work.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostOf, OriginPolicy } from "./http/origin.js";
import { api, type Harness, rawRequest, startFake } from "./testing/harness.js";

const JSON_BODY = { "content-type": "application/json" };

describe("Host and Origin checks", () => {
  let h: Harness;
  let host = "";
  beforeAll(async () => {
    h = await startFake({ publicUrls: ["https://video.example.com"] });
    host = new URL(h.url).host;
  });
  afterAll(() => h.close());

  it("refuses a request for another host name (DNS rebinding) on every route but /healthz", async () => {
    for (const [method, path] of [
      ["GET", "/v1/videos"],
      ["GET", "/"],
      ["GET", "/openapi.json"],
      ["DELETE", "/v1/videos/11111111-2222-4333-8444-555555555555"],
    ] as const) {
      const r = await rawRequest(h.url, path, { method, headers: { host: "attacker.example:8080" } });
      expect(r.status, `${method} ${path}`).toBe(421);
      expect(r.body.error.code).toBe("host_not_allowed");
      expect(r.body.error.message).toMatch(/--public-url/);
    }
    expect((await rawRequest(h.url, "/healthz", { headers: { host: "attacker.example" } })).status).toBe(200);
  });

  it("serves its own addresses, loopback names and the --public-url", async () => {
    for (const name of [
      host,
      `localhost:${new URL(h.url).port}`,
      "127.0.0.1",
      "[::1]:80",
      "video.example.com",
    ])
      expect((await rawRequest(h.url, "/v1/videos", { headers: { host: name } })).status, name).toBe(200);
  });

  it("refuses cross-site submissions and deletes, by Origin or Sec-Fetch-Site", async () => {
    const post = (headers: Record<string, string>, body = JSON.stringify({ prompt: "csrf" })) =>
      rawRequest(h.url, "/v1/videos", { method: "POST", headers: { ...JSON_BODY, ...headers }, body });
    // A form post from another site (text/plain or urlencoded bodies are refused anyway; JSON by fetch no-cors).
    const cross = await post({ origin: "http://attacker.example" });
    expect(cross.status).toBe(403);
    expect(cross.body.error.code).toBe("cross_site_request");
    expect(cross.body.error.message).toMatch(/from a page at http:\/\/attacker\.example/);
    expect((await post({ origin: "null" })).status).toBe(403);
    // Another port on the same host is another origin.
    expect((await post({ origin: "http://127.0.0.1:1" })).status).toBe(403);
    // A browser that sends no Origin still says where the request comes from.
    expect((await post({ "sec-fetch-site": "cross-site" })).status).toBe(403);
    expect((await post({ "sec-fetch-site": "same-site" })).status).toBe(403);
    const del = await rawRequest(h.url, "/v1/videos/11111111-2222-4333-8444-555555555555", {
      method: "DELETE",
      headers: { origin: "http://attacker.example" },
    });
    expect(del.status).toBe(403);
    expect((await api(h.url, "/v1/videos")).body.data).toEqual([]);
  });

  it("takes submissions from curl and SDKs (no Origin), its own page, and the public URL's pages", async () => {
    const post = (headers: Record<string, string>) =>
      rawRequest(h.url, "/v1/videos", {
        method: "POST",
        headers: { ...JSON_BODY, ...headers },
        body: JSON.stringify({ prompt: "fine", steps: 1 }),
      });
    expect((await post({})).status).toBe(202);
    expect((await post({ "sec-fetch-site": "none" })).status).toBe(202);
    expect((await post({ origin: h.url, "sec-fetch-site": "same-origin" })).status).toBe(202);
    expect((await post({ origin: "https://video.example.com", host: "video.example.com" })).status).toBe(202);
    // Reads from another site are not refused (a browser does not let the page see them: no CORS headers).
    const read = await rawRequest(h.url, "/v1/videos", { headers: { origin: "http://attacker.example" } });
    expect(read.status).toBe(200);
    expect(read.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("OriginPolicy", () => {
  it("reads host names out of Host headers", () => {
    expect(hostOf("Example.COM:8080")).toBe("example.com");
    expect(hostOf("[::1]:8080")).toBe("::1");
    expect(hostOf("::1")).toBe("::1");
    expect(hostOf("10.0.0.5")).toBe("10.0.0.5");
  });

  it("on every interface, serves the machine's addresses but not other names", () => {
    const p = new OriginPolicy({ host: "0.0.0.0", publicUrls: [] });
    expect(p.hostAllowed("127.0.0.1:8080")).toBe(true);
    expect(p.hostAllowed("attacker.example")).toBe(false);
    expect(p.hostAllowed(undefined)).toBe(true);
    const bound = new OriginPolicy({ host: "10.1.2.3", publicUrls: ["http://gpu-box:8080"] });
    expect(bound.hostAllowed("10.1.2.3:8080")).toBe(true);
    expect(bound.hostAllowed("gpu-box")).toBe(true);
    expect(bound.hostAllowed("10.1.2.4")).toBe(false);
  });
});
