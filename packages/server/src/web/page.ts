// The page's HTML and CSS. Static text only: every job field is put into the DOM by
// the client script with textContent, never as markup.

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Tessera</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/web/app.css">
<script type="module" src="/web/app.js"></script>
</head>
<body>
<header>
  <h1>Tessera</h1>
  <span id="server-info" class="muted"></span>
  <details id="key-box">
    <summary>API key</summary>
    <label>Key <input id="api-key" type="password" autocomplete="off" spellcheck="false" placeholder="only when the server has keys"></label>
    <button type="button" id="save-key">Save</button>
    <button type="button" id="clear-key">Forget</button>
    <p class="muted">Kept in this browser's localStorage and sent as <code>Authorization: Bearer</code>.</p>
  </details>
</header>
<main>
<form id="create" autocomplete="off">
  <label class="wide">Prompt <textarea id="prompt" name="prompt" rows="3" required maxlength="2000" placeholder="a red ball rolling down a street"></textarea></label>
  <label class="wide">Negative prompt <textarea id="negative_prompt" name="negative_prompt" rows="2" maxlength="2000"></textarea></label>
  <label>Size <input id="size" name="size" placeholder="model default, e.g. 832x480" pattern="[0-9]{1,5}x[0-9]{1,5}"></label>
  <label>Length <span class="row"><input id="length" name="length" type="number" min="0" step="any" placeholder="default"><select id="length-unit" name="length_unit"><option value="frames">frames</option><option value="seconds">seconds</option></select></span></label>
  <label>Steps <input id="steps" name="steps" type="number" min="1" max="100" step="1" placeholder="default"></label>
  <label>Guidance <input id="guidance" name="guidance" type="number" min="0" max="30" step="any" placeholder="default"></label>
  <label>Seed <input id="seed" name="seed" type="number" min="0" step="1" placeholder="random"></label>
  <label>Image (optional) <input id="image" name="image" type="file" accept="image/png,image/jpeg,image/webp,image/gif"></label>
  <label>End image (optional) <input id="end_image" name="end_image" type="file" accept="image/png,image/jpeg,image/webp,image/gif"></label>
  <div class="check-cell"><label class="check"><input id="rewrite" name="rewrite" type="checkbox" checked> Rewrite the prompt for the model</label><span id="rewrite-hint" class="muted">a model trained on one caption style gets the prompt in that style</span></div>
  <div class="wide actions">
    <button type="submit" id="submit">Generate</button>
    <output id="form-error" class="error" role="alert"></output>
  </div>
</form>
<section>
  <h2>Videos <button type="button" id="refresh" class="small">Refresh</button></h2>
  <p id="list-error" class="error" role="alert"></p>
  <ol id="jobs"></ol>
</section>
</main>
<template id="job-template">
  <li class="job">
    <div class="media"></div>
    <div class="info">
      <p class="prompt"></p>
      <p class="prompt-used muted" hidden>Sent to the model: <q class="used-text"></q><span class="filled"></span></p>
      <p class="unknown muted" hidden>Not understood: <span class="unknown-words"></span></p>
      <p class="meta muted"></p>
      <div class="progress-row"><progress class="bar" max="100" value="0"></progress><span class="pct"></span></div>
      <p class="status"></p>
      <p class="error job-error"></p>
      <div class="buttons">
        <a class="download" hidden>Download</a>
        <button type="button" class="cancel">Cancel</button>
        <button type="button" class="delete">Delete</button>
      </div>
    </div>
  </li>
</template>
</body>
</html>
`;

export const PAGE_CSS = `:root { color-scheme: light dark; --accent: #3b6fd8; --err: #c0392b; font-family: system-ui, sans-serif; }
body { margin: 0 auto; max-width: 70rem; padding: 1rem; }
header { display: flex; flex-wrap: wrap; gap: 1rem; align-items: baseline; }
header h1 { margin: 0; }
#key-box { margin-left: auto; }
.muted { opacity: 0.7; font-size: 0.9em; }
.error { color: var(--err); white-space: pre-wrap; }
.error:empty { display: none; }
form { display: grid; grid-template-columns: repeat(auto-fill, minmax(14rem, 1fr)); gap: 0.75rem; margin: 1rem 0; }
form label { display: flex; flex-direction: column; gap: 0.25rem; font-size: 0.9em; }
form .wide { grid-column: 1 / -1; }
.row { display: flex; gap: 0.25rem; }
.check-cell { display: flex; flex-direction: column; gap: 0.25rem; justify-content: center; font-size: 0.9em; }
form label.check { flex-direction: row; align-items: center; gap: 0.4rem; }
.job .prompt-used q { overflow-wrap: anywhere; }
.row input { flex: 1; min-width: 0; }
textarea, input, select, button { font: inherit; }
.actions { display: flex; gap: 1rem; align-items: center; }
button[type=submit] { background: var(--accent); color: white; border: 0; padding: 0.5rem 1.25rem; border-radius: 4px; cursor: pointer; }
button:disabled { opacity: 0.5; }
.small { font-size: 0.7em; vertical-align: middle; }
#jobs { list-style: none; padding: 0; display: flex; flex-direction: column; gap: 1rem; }
.job { display: flex; gap: 1rem; border: 1px solid #8884; border-radius: 6px; padding: 0.75rem; }
.job .media { flex: 0 0 16rem; min-height: 4rem; display: flex; align-items: center; justify-content: center; background: #8882; border-radius: 4px; }
.job .media video, .job .media img { max-width: 16rem; max-height: 16rem; }
.job .media img.preview { width: 16rem; max-height: none; image-rendering: pixelated; opacity: 0.9; }
.job .info { flex: 1; min-width: 0; }
.job .prompt { margin: 0 0 0.25rem; font-weight: 600; overflow-wrap: anywhere; white-space: pre-wrap; }
.job p { margin: 0.25rem 0; }
.progress-row { display: flex; gap: 0.5rem; align-items: center; }
.progress-row progress { flex: 1; }
.buttons { display: flex; gap: 0.5rem; margin-top: 0.5rem; }
.job[data-status=completed] .cancel, .job[data-status=failed] .cancel, .job[data-status=cancelled] .cancel { display: none; }
.job[data-status=queued] .delete, .job[data-status=in_progress] .delete { display: none; }
@media (max-width: 40rem) { .job { flex-direction: column; } .job .media { flex-basis: auto; } }
`;
