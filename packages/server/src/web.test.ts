// The web page at /: what the server sends (HTML, CSP, assets), then the page itself
// in headless Chromium against the real pipeline on a tiny random model: submit from
// the form, watch the progress bar fill over SSE (read with fetch), play the result,
// delete it; and the same with an API key, which the page keeps in localStorage.
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer as createHttpServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type TesseraServer } from "./app.js";
import type { VideoGenerator } from "./generator.js";
import { loadPipelineGenerator } from "./pipeline-generator.js";
import { api, type Harness, startFake, UNDER_CI } from "./testing/harness.js";
import { WEB_CSP } from "./web/index.js";

// Browser globals for the callbacks that run in the page (this package has no DOM lib).
declare const document: any;
declare const window: any;
declare const localStorage: any;

describe("GET / (the web page's files)", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startFake();
  });
  afterAll(async () => {
    await h?.close();
  });

  it("serves the page as HTML under a strict CSP, with no inline script or style", async () => {
    const r = await fetch(`${h.url}/`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const csp = r.headers.get("content-security-policy") ?? "";
    expect(csp).toBe(WEB_CSP);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain("unsafe-inline");
    expect(csp).not.toContain("unsafe-eval");
    expect(r.headers.get("x-content-type-options")).toBe("nosniff");
    const html = await r.text();
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('<script type="module" src="/web/app.js"></script>');
    // Every <script> has a src (nothing inline), no on* handler attributes, no style attributes.
    for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)) {
      expect(m[1]).toContain("src=");
      expect(m[2]).toBe("");
    }
    expect(html).not.toMatch(/\son[a-z]+\s*=/i);
    expect(html).not.toMatch(/\sstyle\s*=/i);
    expect(html).not.toContain("<style");
    // It is not part of the API description.
    const doc = (await api(h.url, "/openapi.json")).body;
    expect(Object.keys(doc.paths)).not.toContain("/");
  });

  it("serves the script and the stylesheet with their content types, and revalidates by ETag", async () => {
    const js = await fetch(`${h.url}/web/app.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    const src = await js.text();
    expect(src).toContain("/v1/videos");
    expect(src).not.toContain("innerHTML");
    expect(src).not.toContain("EventSource");
    const css = await fetch(`${h.url}/web/app.css`);
    expect(css.headers.get("content-type")).toBe("text/css; charset=utf-8");
    const etag = js.headers.get("etag") as string;
    expect(etag).toMatch(/^"[\w-]+"$/);
    const again = await fetch(`${h.url}/web/app.js`, { headers: { "if-none-match": etag } });
    expect(again.status).toBe(304);
    expect((await fetch(`${h.url}/web/nope.js`)).status).toBe(404);
    expect((await fetch(`${h.url}/`, { method: "HEAD" })).status).toBe(200);
  });

  it("needs no key to load, while the API behind it does", async () => {
    const key = h.srv.store.createKey("web").key;
    expect((await fetch(`${h.url}/`)).status).toBe(200);
    expect((await fetch(`${h.url}/web/app.js`)).status).toBe(200);
    expect((await api(h.url, "/v1/videos")).status).toBe(401);
    expect((await api(h.url, "/v1/videos", { key })).status).toBe(200);
  });
});

// ---- the page in a browser ----

const CHROMIUM = process.env.TESSERA_CHROMIUM ?? "/usr/bin/chromium";
const probe = await (async (): Promise<
  { ok: true; core: any; chromium: any } | { ok: false; reason: string }
> => {
  if (!existsSync(CHROMIUM))
    return {
      ok: false,
      reason: `no browser at ${CHROMIUM} (apt-get install chromium, or set TESSERA_CHROMIUM)`,
    };
  let chromium: any;
  try {
    chromium = (await import("playwright-core")).chromium;
  } catch (e) {
    return { ok: false, reason: `playwright-core does not load: ${(e as Error).message.split("\n")[0]}` };
  }
  try {
    const core: any = await import("@tessera/core");
    if (typeof core.WanPipeline?.load !== "function" || typeof core.writeRandomWanModel !== "function")
      return {
        ok: false,
        reason: "@tessera/core has no WanPipeline.load / writeRandomWanModel yet (rebuild it: pnpm build)",
      };
    return { ok: true, core, chromium };
  } catch (e) {
    return { ok: false, reason: `@tessera/core does not load: ${(e as Error).message.split("\n")[0]}` };
  }
})();
if (!probe.ok) console.warn(`[server] SKIPPING the web page browser tests: ${probe.reason}`);

describe.runIf(!probe.ok && UNDER_CI)("the web page in a browser, under CI", () => {
  it("needs Chromium (CI=true makes a missing one a failure, not a skip)", () => {
    throw new Error(`${(probe as { reason: string }).reason} (.ci/run installs it)`);
  });
});

describe.skipIf(!probe.ok)(
  `the web page in headless Chromium on the real pipeline${probe.ok ? "" : ` (skipped: ${(probe as { reason: string }).reason})`}`,
  () => {
    let modelDir = "";
    let dataDir = "";
    let profileDir = "";
    let gen: VideoGenerator;
    let srv: TesseraServer;
    let url = "";
    let browser: any;
    let page: any;
    const problems: string[] = [];

    beforeAll(async () => {
      const p = probe as { core: any; chromium: any };
      modelDir = await mkdtemp(join(tmpdir(), "tessera-tiny-model-"));
      dataDir = await mkdtemp(join(tmpdir(), "tessera-server-"));
      profileDir = await mkdtemp(join(tmpdir(), "tessera-chromium-"));
      await p.core.writeRandomWanModel(modelDir, { config: "tiny", seed: 0 });
      gen = await loadPipelineGenerator({ modelDir, device: "cpu", name: "tiny" });
      srv = await createServer({ dataDir, generator: gen, port: 0, rateLimit: false });
      url = await srv.listen();
      browser = await p.chromium.launchPersistentContext(profileDir, {
        executablePath: CHROMIUM,
        headless: true,
        timeout: 30_000,
        args: [
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-quic",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
        ],
      });
      page = browser.pages()[0] ?? (await browser.newPage());
      page.setDefaultTimeout(30_000);
      page.on("console", (m: any) => {
        if (m.type() === "error") problems.push(`console: ${m.text()}`);
      });
      page.on("pageerror", (e: Error) => problems.push(`page error: ${e.message}`));
    }, 60_000);

    afterAll(async () => {
      await browser?.close().catch(() => {});
      await srv?.close({ graceMs: 0 });
      await gen?.close?.();
      for (const d of [modelDir, dataDir, profileDir]) if (d) await rm(d, { recursive: true, force: true });
    });

    /** Fills the form, submits, and returns the new job's id once its card shows. */
    async function submitFromForm(prompt: string): Promise<string> {
      await page.fill("#prompt", prompt);
      await page.fill("#size", "64x64");
      await page.fill("#length", "5");
      await page.selectOption("#length-unit", "frames");
      await page.fill("#steps", "20");
      await page.fill("#seed", "7");
      const before: string[] = await page.$$eval(".job", (els: any[]) => els.map((e) => e.dataset.id));
      await page.click("#submit");
      const handle = await page.waitForFunction(
        (old: string[]) => {
          const e = [...document.querySelectorAll(".job")].find((x) => !old.includes(x.dataset.id as string));
          return e?.dataset.id;
        },
        before,
        { timeout: 10_000 },
      );
      return (await handle.jsonValue()) as string;
    }

    /** Records every value the card's progress bar shows, until it reads 100 and the job completed. */
    async function watchToCompletion(id: string): Promise<number[]> {
      const handle = await page.waitForFunction(
        (jobId: string) => {
          const w = window as any;
          w.__seen ??= {};
          w.__seen[jobId] ??= [];
          const seen: number[] = w.__seen[jobId];
          const card = document.querySelector(`.job[data-id="${jobId}"]`);
          const bar = card?.querySelector("progress");
          if (!card || !bar) return false;
          if (seen.at(-1) !== bar.value) seen.push(bar.value);
          if (card.dataset.status === "failed" || card.dataset.status === "cancelled")
            throw new Error(`job ${card.dataset.status}: ${card.querySelector(".job-error")?.textContent}`);
          return bar.value === 100 && card.dataset.status === "completed" ? seen : false;
        },
        id,
        { polling: "raf", timeout: 60_000 },
      );
      return (await handle.jsonValue()) as number[];
    }

    /** Waits for the card's <video> (or <img> for a GIF) to load; returns what it loaded. */
    async function loadedMedia(id: string) {
      return page.evaluate(async (jobId: string) => {
        const card = document.querySelector(`.job[data-id="${jobId}"]`) as any;
        for (let i = 0; i < 200 && !card.querySelector(".media video, .media img"); i++)
          await new Promise((r) => setTimeout(r, 50));
        const v = card.querySelector(".media video") as any | null;
        if (v) {
          if (v.readyState < 1)
            await new Promise<void>((ok, bad) => {
              v.addEventListener("loadedmetadata", () => ok(), { once: true });
              v.addEventListener(
                "error",
                () => bad(new Error(`video error ${v.error?.code}: ${v.error?.message}`)),
                {
                  once: true,
                },
              );
              setTimeout(() => bad(new Error("no loadedmetadata in 15 s")), 15_000);
            });
          return {
            kind: "video",
            src: v.currentSrc,
            duration: v.duration,
            width: v.videoWidth,
            height: v.videoHeight,
          };
        }
        const img = card.querySelector(".media img") as any | null;
        if (!img) throw new Error("no <video> or <img> appeared");
        if (!img.complete) await img.decode();
        return {
          kind: "img",
          src: img.currentSrc,
          duration: 0,
          width: img.naturalWidth,
          height: img.naturalHeight,
        };
      }, id);
    }

    it("submits from the form, fills the progress bar live, plays the video, and deletes it", async () => {
      await page.goto(`${url}/`);
      await page.waitForSelector("html[data-ready=true]");
      await page.waitForFunction(() => document.getElementById("server-info")?.textContent?.includes("tiny"));
      // Markup in a prompt is text, not markup.
      const prompt = 'a red ball <img src=x id="injected"> <b>rolling</b> & "quoted"';
      const id = await submitFromForm(prompt);
      const seen = await watchToCompletion(id);
      console.log(`[server] web page progress bar values for a 20-step job: ${seen.join(", ")}`);
      expect(seen.at(-1)).toBe(100);
      // Live: the bar showed at least one value on the way (not just 0 then 100).
      expect(seen.some((v) => v > 0 && v < 100)).toBe(true);
      const card = `.job[data-id="${id}"]`;
      expect(await page.textContent(`${card} .prompt`)).toBe(prompt);
      expect(await page.$("#injected")).toBeNull();
      expect(await page.$(`${card} .prompt b`)).toBeNull();
      expect(await page.textContent(`${card} .pct`)).toBe("100%");

      const job = (await api(url, `/v1/videos/${id}`)).body;
      expect(job).toMatchObject({
        status: "completed",
        prompt,
        width: 64,
        height: 64,
        frames: 5,
        steps: 20,
        seed: 7,
      });
      const media = await loadedMedia(id);
      if (job.content.content_type === "video/mp4") {
        expect(media.kind).toBe("video");
        expect(media.src).toBe(`${url}/v1/videos/${id}/content`);
        expect(Number.isFinite(media.duration) && media.duration > 0, JSON.stringify(media)).toBe(true);
        expect([media.width, media.height]).toEqual([64, 64]);
        expect(await page.getAttribute(`${card} video`, "poster")).toBe(
          `/v1/videos/${id}/content?variant=thumbnail`,
        );
      } else {
        console.warn(`[server] no ffmpeg: the output is ${job.content.content_type}, checked as an <img>`);
        expect(media.kind).toBe("img");
        expect([media.width, media.height]).toEqual([64, 64]);
      }

      await page.click(`${card} .delete`);
      await page.waitForSelector(card, { state: "detached", timeout: 10_000 });
      expect((await api(url, `/v1/videos/${id}`)).status).toBe(404);
      expect(problems).toEqual([]);
    }, 90_000);

    it("cancels a running job from its card", async () => {
      await page.fill("#prompt", "a long one");
      await page.fill("#size", "128x128");
      await page.fill("#length", "17");
      await page.fill("#steps", "100");
      await page.fill("#seed", "");
      const before: string[] = await page.$$eval(".job", (els: any[]) => els.map((e) => e.dataset.id));
      await page.click("#submit");
      const id = (await (
        await page.waitForFunction(
          (old: string[]) =>
            [...document.querySelectorAll(".job")].find((x) => !old.includes(x.dataset.id as string))?.dataset
              .id,
          before,
        )
      ).jsonValue()) as string;
      const card = `.job[data-id="${id}"]`;
      await page.waitForSelector(`${card}[data-status=in_progress]`, { timeout: 30_000 });
      await page.click(`${card} .cancel`);
      await page.waitForSelector(`${card}[data-status=cancelled]`, { timeout: 10_000 });
      expect((await api(url, `/v1/videos/${id}`)).body.status).toBe("cancelled");
      // A finished card offers Delete instead of Cancel.
      expect(await page.isVisible(`${card} .cancel`)).toBe(false);
      await page.click(`${card} .delete`);
      await page.waitForSelector(card, { state: "detached", timeout: 10_000 });
      expect(problems).toEqual([]);
    }, 60_000);

    it("with API keys: asks for a key, keeps it in localStorage, and sends it as a bearer token", async () => {
      const key = srv.store.createKey("browser").key;
      await page.reload();
      await page.waitForSelector("html[data-ready=true]");
      await page.waitForFunction(() =>
        document.getElementById("list-error")?.textContent?.includes("API key"),
      );
      problems.length = 0; // the 401 above is logged by the browser as a failed resource
      await page.click("#key-box summary");
      await page.fill("#api-key", key);
      await page.click("#save-key");
      await page.waitForFunction(() => document.getElementById("list-error")?.textContent === "");
      expect(await page.evaluate(() => localStorage.getItem("tessera.apiKey"))).toBe(key);

      const id = await submitFromForm("a keyed video");
      const seen = await watchToCompletion(id);
      expect(seen.at(-1)).toBe(100);
      expect((await api(url, `/v1/videos/${id}`, { key })).body.status).toBe("completed");
      // Another key does not see it; the page's key does (the list came back with it).
      expect((await api(url, `/v1/videos/${id}`, { key: srv.store.createKey("other").key })).status).toBe(
        404,
      );
      const media = await loadedMedia(id);
      // A <video> cannot send the header, so the page fetched the bytes and plays a blob: URL.
      expect(media.src).toMatch(/^blob:/);
      if (media.kind === "video") expect(media.duration).toBeGreaterThan(0);
      expect(problems.filter((p) => !p.includes("401"))).toEqual([]);
    }, 90_000);

    it("shows what a caption-style model was sent and the words it did not understand; the checkbox turns rewriting off", async () => {
      await page.goto(`${url}/`);
      await page.waitForFunction(() =>
        document.getElementById("rewrite-hint")?.textContent?.includes("free text"),
      );
      const h = await startFake({ fake: { stepMs: 2, rewrites: true } });
      try {
        await page.goto(`${h.url}/`);
        await page.waitForSelector("html[data-ready=true]");
        await page.waitForFunction(() =>
          document.getElementById("rewrite-hint")?.textContent?.includes("fake-world"),
        );
        expect(await page.isChecked("#rewrite")).toBe(true);
        const id = await submitFromForm("a ball zooming past");
        const card = `.job[data-id="${id}"]`;
        await page.waitForSelector(`${card}[data-status=completed]`, { timeout: 10_000 });
        expect(await page.isVisible(`${card} .prompt-used`)).toBe(true);
        expect(await page.textContent(`${card} .used-text`)).toBe("fake caption: red a ball");
        expect(await page.textContent(`${card} .filled`)).toBe(" (filled in: objects[0].colour)");
        expect(await page.isVisible(`${card} .unknown`)).toBe(true);
        expect(await page.textContent(`${card} .unknown-words`)).toBe("zooming, past");
        expect(h.gen.calls.at(-1)?.rewrite).toBe(true);

        await page.uncheck("#rewrite");
        const off = await submitFromForm("a ball zooming past");
        const offCard = `.job[data-id="${off}"]`;
        await page.waitForSelector(`${offCard}[data-status=completed]`, { timeout: 10_000 });
        expect(h.gen.calls.at(-1)?.rewrite).toBe(false);
        expect((await api(h.url, `/v1/videos/${off}`)).body).toMatchObject({
          prompt_used: "a ball zooming past",
          rewrite: null,
        });
        expect(await page.isVisible(`${offCard} .prompt-used`)).toBe(false);
        expect(await page.isVisible(`${offCard} .unknown`)).toBe(false);
        // The first card still shows its own rewrite.
        expect(await page.isVisible(`${card} .unknown`)).toBe(true);
      } finally {
        await h.close();
      }
    }, 60_000);

    it("shows the live preview in the running job's card, then the video in its place", async () => {
      const h = await startFake({ fake: { stepMs: 150, previews: true } });
      try {
        await page.goto(`${h.url}/`);
        await page.waitForSelector("html[data-ready=true]");
        const id = await submitFromForm("a preview to watch");
        const card = `.job[data-id="${id}"]`;
        await page.waitForSelector(`${card} .media img.preview`, { timeout: 10_000 });
        const shown = await page.evaluate(async (sel: string) => {
          const img = document.querySelector(`${sel} .media img.preview`) as any;
          if (!img.complete) await img.decode();
          return {
            status: document.querySelector(sel)?.dataset.status,
            src: img.src.slice(0, 22),
            width: img.naturalWidth,
            height: img.naturalHeight,
          };
        }, card);
        // 64x64 and 5 frames: 2 latent frames of 8x8, enlarged to 32x32 each.
        expect(shown).toEqual({
          status: "in_progress",
          src: "data:image/png;base64,",
          width: 64,
          height: 32,
        });
        await page.waitForSelector(`${card}[data-status=completed]`, { timeout: 15_000 });
        await page.waitForFunction(
          (sel: string) => !document.querySelector(`${sel} .media img.preview`),
          card,
          { timeout: 10_000 },
        );
        expect(problems.filter((p) => !p.includes("401"))).toEqual([]);
      } finally {
        await h.close();
      }
    }, 60_000);

    it("refuses a cross-site form post and no-cors fetch from a page on another origin", async () => {
      const h = await startFake({ fake: { stepMs: 1 } });
      // The attacker's page, on another port of the same machine (another origin, the same site).
      const evil = createHttpServer((_req, res) => {
        res.setHeader("content-type", "text/html");
        res.end(`<!doctype html><form id="f" method="POST" action="${h.url}/v1/videos" enctype="multipart/form-data">
<input name="prompt" value="from another site"></form>
<script>
  const fd = new FormData(); fd.append("prompt", "no-cors fetch");
  fetch("${h.url}/v1/videos", { method: "POST", mode: "no-cors", body: fd })
    .finally(() => { document.title = "fetched"; document.getElementById("f").submit(); });
</script>`);
      });
      await new Promise<void>((r) => evil.listen(0, "127.0.0.1", r));
      const port = (evil.address() as { port: number }).port;
      try {
        await page.goto(`http://127.0.0.1:${port}/`);
        // The form post navigates to the API's answer.
        await page.waitForURL(`${h.url}/v1/videos`, { timeout: 10_000 });
        expect(await page.textContent("body")).toMatch(/cross_site_request/);
        expect((await api(h.url, "/v1/videos")).body.data).toEqual([]);
        expect(h.gen.calls).toEqual([]);
      } finally {
        evil.closeAllConnections();
        await new Promise((r) => evil.close(r));
        await h.close();
      }
      problems.length = 0; // the refusals above are logged by the browser as failed requests
    }, 60_000);
  },
);
