export {
  DEFAULT_COLOUR_ORDER,
  MAX_OBJECTS,
  PromptRewriteError,
  REWRITE_DEFAULTS,
  type RewriteDefaults,
  type RewriteOptions,
  type RewriteResult,
  type RewrittenObject,
  type RewrittenScene,
  rewritePrompt,
} from "./rewrite.js";
