import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CaptionParseError, captionScene, parseCaption } from "../caption/caption.js";
import { sampleScene } from "../world/scene.js";
import { PromptRewriteError, type RewrittenScene, rewritePrompt } from "./index.js";

const BG = "on a black background";

// [what a user types, the caption the model gets, words reported (omitted: none)]
const CASES: Array<[string, string, string[]?]> = [
  // The two captions the world's grammar documents, and the two phrasings.
  ["a red circle moves to the right on a black background", `a red circle moves to the right ${BG}`],
  [
    "a small green square bounces in the middle, and a blue triangle stays still on the left, on a gray and white background, the camera pans slowly to the left",
    "a small green square bounces in the middle, and a blue triangle stays still on the left, on a gray and white background, the camera pans slowly to the left",
  ],
  ["red ball going right", `a red circle moves to the right ${BG}`],
  ["a square that grows, purple", `a purple square grows ${BG}`],
  [
    "a red ball going right and a blue square falling",
    `a red circle moves to the right, and a blue square moves down, ${BG}`,
  ],
  // Shape synonyms.
  ["a blue disc", `a blue circle stays still ${BG}`],
  ["a green dot moving left", `a green circle moves to the left ${BG}`],
  ["an orange box", `an orange square stays still ${BG}`],
  ["yellow block sliding up", `a yellow square moves up ${BG}`],
  ["a white cube on blue", "a white square stays still on a blue background"],
  ["purple rectangle heading down", `a purple square moves down ${BG}`],
  ["a red pyramid rolling right", `a red triangle moves to the right ${BG}`],
  ["green wedge", `a green triangle stays still ${BG}`],
  ["a round yellow thing bouncing", `a yellow circle bounces ${BG}`],
  ["two blue balls", `a blue circle stays still ${BG}`, ["two"]],
  // Colour synonyms.
  ["violet ball", `a purple circle stays still ${BG}`],
  ["magenta box", `a purple square stays still ${BG}`],
  ["lilac triangle", `a purple triangle stays still ${BG}`],
  ["gold ball", `a yellow circle stays still ${BG}`],
  ["a navy square", `a blue square stays still ${BG}`],
  ["cyan ball", `a blue circle stays still ${BG}`],
  ["crimson ball", `a red circle stays still ${BG}`],
  ["scarlet cube", `a red square stays still ${BG}`],
  ["lime triangle", `a green triangle stays still ${BG}`],
  ["emerald disc", `a green circle stays still ${BG}`],
  ["ivory ball on black", `a white circle stays still ${BG}`],
  ["a snow coloured ball on grey", "a white circle stays still on a gray background"],
  ["tangerine square", `an orange square stays still ${BG}`],
  ["an amber dot", `an orange circle stays still ${BG}`],
  ["a dark blue ball", `a blue circle stays still ${BG}`],
  // Motions.
  ["a ball moving upwards", `a red circle moves up ${BG}`],
  ["a ball heading downward", `a red circle moves down ${BG}`],
  ["a red ball rises", `a red circle moves up ${BG}`],
  ["a blue square drops", `a blue square moves down ${BG}`],
  ["a blue square sinks to the bottom", `a blue square moves down ${BG}`],
  ["a triangle moving diagonally", `a red triangle moves diagonally down to the right ${BG}`],
  ["a ball moving down and to the right", `a red circle moves diagonally down to the right ${BG}`],
  [
    "a ball going diagonally up to the left",
    `a red circle moves diagonally down to the right ${BG}`,
    ["up", "to the left"],
  ],
  ["a green ball jumping", `a green circle bounces ${BG}`],
  ["a ball hopping up and down", `a red circle bounces ${BG}`],
  ["a ball that gets bigger", `a red circle grows ${BG}`],
  ["a square inflating", `a red square grows ${BG}`],
  ["a circle that gets smaller", `a red circle shrinks ${BG}`],
  ["a triangle contracts", `a red triangle shrinks ${BG}`],
  ["a red square not moving", `a red square stays still ${BG}`],
  ["a stationary orange triangle", `an orange triangle stays still ${BG}`],
  ["a blue ball sits", `a blue circle stays still ${BG}`],
  ["a ball drifting leftward", `a red circle moves to the left ${BG}`],
  ["a ball moving", `a red circle moves to the right ${BG}`],
  ["a ball going from left to right", `a red circle moves to the right on the left ${BG}`],
  // Backgrounds.
  ["red ball, black backdrop", `a red circle stays still ${BG}`],
  ["a blue square over white", "a blue square stays still on a white background"],
  ["a yellow triangle against gray", "a yellow triangle stays still on a gray background"],
  ["a red ball on a green background", "a red circle stays still on a green background"],
  ["background: blue, a white ball", "a white circle stays still on a blue background"],
  ["a ball on a gray and white background", "a red circle stays still on a gray and white background"],
  ["a red ball on a red background", `a red circle stays still ${BG}`, ["red"]],
  [
    "a red ball on blue and a green square",
    "a red circle stays still, and a green square stays still, on a blue background",
  ],
  // Start positions.
  ["a small blue ball in the top left corner", `a small blue circle stays still in the top left ${BG}`],
  ["a large red square at the bottom moving up", `a large red square moves up at the bottom ${BG}`],
  ["a triangle in the centre", `a red triangle stays still in the middle ${BG}`],
  ["a green ball on the right going left", `a green circle moves to the left on the right ${BG}`],
  [
    "a gold disc sliding left-to-right in the top-left",
    `a yellow circle moves to the right in the top left ${BG}`,
  ],
  // Word order.
  ["going right, a red ball", `a red circle moves to the right ${BG}`],
  ["ball red right", `a red circle moves to the right ${BG}`],
  ["bouncing, small, green, a square", `a small green square bounces ${BG}`],
  ["on white, a blue triangle falling", "a blue triangle moves down on a white background"],
  ["A RED BALL, going RIGHT!!!", `a red circle moves to the right ${BG}`],
  // Two objects.
  ["a red ball and a blue square", `a red circle stays still, and a blue square stays still, ${BG}`],
  [
    "a yellow ball with a purple triangle moving left",
    `a yellow circle stays still, and a purple triangle moves to the left, ${BG}`,
  ],
  [
    "a big white square shrinking, a small red ball bouncing, on blue",
    "a large white square shrinks, and a small red circle bounces, on a blue background",
  ],
  ["a ball and a square", `a red circle stays still, and a blue square stays still, ${BG}`],
  ["a ball and a red square", `a blue circle stays still, and a red square stays still, ${BG}`],
  [
    "a red ball and a square on blue",
    "a red circle stays still, and a green square stays still, on a blue background",
  ],
  [
    "a red ball going right, blue going left",
    `a red circle moves to the right, and a blue circle moves to the left, ${BG}`,
  ],
  [
    "a red ball, a blue ball and a green ball",
    `a red circle stays still, and a blue circle stays still, ${BG}`,
    ["green", "ball"],
  ],
  // The camera.
  ["a red ball, camera panning left", `a red circle stays still ${BG}, the camera pans slowly to the left`],
  [
    "a blue square bouncing while the camera pans right",
    `a blue square bounces ${BG}, the camera pans slowly to the right`,
  ],
  [
    "a slow left pan over a green ball",
    `a green circle stays still ${BG}, the camera pans slowly to the left`,
  ],
  ["static camera, a ball rising", `a red circle moves up ${BG}`],
  [
    "a ball going right camera pans left",
    `a red circle moves to the right ${BG}, the camera pans slowly to the left`,
  ],
  [
    "a ball going right, slowly panning left",
    `a red circle moves to the right ${BG}, the camera pans slowly to the left`,
  ],
  ["camera moves up, a blue ball", `a blue circle stays still ${BG}`, ["moves up", "camera"]],
  [
    "a blue ball, the camera moves to the left",
    `a blue circle stays still ${BG}, the camera pans slowly to the left`,
  ],
  ["the camera pans", `a red circle stays still ${BG}, the camera pans slowly to the right`],
  // Words the world has no place for.
  ["a dragon flying left", `a red circle moves to the left ${BG}`, ["dragon"]],
  ["a pink ball", `a red circle stays still ${BG}`, ["pink"]],
  ["a black ball", `a red circle stays still ${BG}`, ["black"]],
  ["a ball not bouncing", `a red circle bounces ${BG}`, ["not"]],
  ["a red ball quickly moving right", `a red circle moves to the right ${BG}`, ["quickly"]],
  ["the a an", `a red circle stays still ${BG}`],
];

// parseCaption reads a missing size as "medium"; the rewriter leaves medium out, as the caption does.
function normalised(a: RewrittenScene): RewrittenScene {
  return { ...a, objects: a.objects.map((o) => ({ ...o, size: o.size ?? "medium" })) };
}

describe("rewritePrompt", () => {
  it("has at least 60 phrasings", () => {
    expect(CASES.length).toBeGreaterThanOrEqual(60);
  });

  // The lexicon cases leave start positions out (positions: false); the defaults
  // for them are checked on their own below.
  it.each(CASES)("%j", (input, caption, unknown = []) => {
    const r = rewritePrompt(input, { positions: false });
    expect(r.caption).toBe(caption);
    expect(r.unknownWords).toEqual(unknown);
    expect(r.changed).toBe(caption !== input.trim());
    expect(captionScene(r.attributes)).toBe(r.caption);
    expect(parseCaption(r.caption)).toEqual(normalised(r.attributes));
  });

  it("gives every object a start position where its motion has room", () => {
    expect(rewritePrompt("red ball going right").caption).toBe(
      "a red circle moves to the right on the left on a black background",
    );
    expect(rewritePrompt("a blue square moving up on white").caption).toBe(
      "a blue square moves up at the bottom on a white background",
    );
    expect(rewritePrompt("a green triangle").caption).toBe(
      "a green triangle stays still in the middle on a black background",
    );
    expect(rewritePrompt("a red ball going right and a blue square falling").caption).toBe(
      "a red circle moves to the right in the top left, and a blue square moves down in the top right, on a black background",
    );
    // A position that is given is kept, and is not reported as filled in.
    const r = rewritePrompt("a red ball going right in the middle");
    expect(r.caption).toBe("a red circle moves to the right in the middle on a black background");
    expect(r.filledDefaults).toEqual(["background"]);
    expect(rewritePrompt("red ball going right").filledDefaults).toEqual([
      "objects[0].position",
      "background",
    ]);
  });

  it("lists the defaults it filled in", () => {
    expect(rewritePrompt("a dragon", { positions: false }).filledDefaults).toEqual([
      "objects[0].colour",
      "objects[0].shape",
      "objects[0].motion",
      "background",
    ]);
    expect(rewritePrompt("a ball and a red square going left", { positions: false }).filledDefaults).toEqual([
      "objects[0].colour",
      "objects[0].motion",
      "background",
    ]);
    expect(
      rewritePrompt("the camera pans over a red ball going up on white", { positions: false }).filledDefaults,
    ).toEqual(["pan"]);
    expect(
      rewritePrompt("a red circle moves to the right on the left on a black background").filledDefaults,
    ).toEqual([]);
  });

  it("takes other defaults when asked", () => {
    const r = rewritePrompt("a square", {
      defaults: { colour: "white", motion: "bouncing", background: "blue" },
    });
    expect(r.caption).toBe("a white square bounces in the middle on a blue background");
    // The preferred colour is skipped where it would be the background's colour.
    expect(rewritePrompt("a ball on blue", { defaults: { colour: "blue" } }).caption).toBe(
      "a red circle stays still in the middle on a blue background",
    );
  });

  it("refuses blank input rather than inventing a scene from nothing", () => {
    for (const blank of ["", "   ", "!!!", " , . ; "])
      expect(() => rewritePrompt(blank)).toThrow(PromptRewriteError);
  });

  it("keeps the caption as typed, apart from surrounding space", () => {
    const c = "a red circle moves to the right on the left on a black background";
    expect(rewritePrompt(`  ${c}\n`).changed).toBe(false);
    expect(rewritePrompt(`${c}.`)).toMatchObject({ caption: c, changed: true, unknownWords: [] });
  });

  it("is idempotent on the world's own captions", () => {
    for (let seed = 0; seed < 400; seed++) {
      const caption = captionScene(sampleScene(seed));
      const r = rewritePrompt(caption);
      expect(r, caption).toMatchObject({ caption, changed: false, unknownWords: [], filledDefaults: [] });
      expect(rewritePrompt(r.caption).caption).toBe(r.caption);
    }
  });

  it("is a fixed point after one rewrite, for every phrasing", () => {
    for (const [input] of CASES) {
      const once = rewritePrompt(input).caption;
      expect(rewritePrompt(once)).toMatchObject({ caption: once, changed: false, unknownWords: [] });
    }
  });

  it("is deterministic", () => {
    for (const [input] of CASES) expect(rewritePrompt(input)).toEqual(rewritePrompt(input));
  });

  it("always yields a caption the world can parse, whatever is typed", () => {
    const word = fc.constantFrom(
      ...["a", "red", "ball", "and", "square", ",", "left", "on", "white", "background", "camera", "pans"],
      ...[
        "not",
        "bounces",
        "big",
        "gray",
        "in",
        "the",
        "top",
        "grows",
        "xyzzy",
        "-",
        "with",
        "slowly",
        "green",
      ],
    );
    fc.assert(
      fc.property(fc.array(fc.oneof(word, fc.string()), { maxLength: 14 }), (ws) => {
        const text = ws.join(" ");
        let r: ReturnType<typeof rewritePrompt>;
        try {
          r = rewritePrompt(text);
        } catch (e) {
          expect(e).toBeInstanceOf(PromptRewriteError);
          return;
        }
        expect(() => parseCaption(r.caption)).not.toThrow(CaptionParseError);
        expect(r.attributes.objects.length).toBeGreaterThanOrEqual(1);
        expect(r.attributes.objects.length).toBeLessThanOrEqual(2);
        expect(rewritePrompt(r.caption).caption).toBe(r.caption);
      }),
      { numRuns: 500, seed: 20261125 },
    );
  });
});
