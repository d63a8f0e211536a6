/*
 * Policy playground: the page a trust-and-safety analyst uses to write a policy and see how the
 * RSafe guard judges content against it, and looks up a logged decision with its history. It talks
 * to the gateway's public API only (GET /v1/policies, GET /v1/policies/{id}, POST /v1/moderate,
 * GET /v1/decisions/{id}).
 *
 * Why plain DOM code and no framework: the page is one screen of forms and tables, shipped inside a
 * Python package that has no JavaScript build step, and served under a strict Content-Security-Policy
 * (script-src 'self', no inline code, nothing from other origins). A framework would add a bundler,
 * a dependency to pin, audit and update, and nothing the DOM cannot already do here. Native form
 * controls give keyboard operation and accessibility for free. Every piece of text that came from a
 * user or from the model is rendered with textContent, never innerHTML, so nothing is ever parsed
 * as markup.
 *
 * Layout of this file:
 *   1. pure functions (no DOM): category parsing, test-set parsing, metrics, policy-file export,
 *      error formatting, bounded concurrency, a decision's history; exported so that they can be
 *      tested on their own
 *   2. the API client (the API key lives in the key field only: never in storage or cookies)
 *   3. the page: policy panel, single check, test set, export, decision log; wired up in start()
 */

/* ----------------------------------------------------------------------------------------------
 * 1. Pure functions
 * ------------------------------------------------------------------------------------------- */

/** The gateway's rule (policy.py) for a category line in an inline policy: `X1 - name`, `S3: name`. */
export const CATEGORY_LINE = /^\s*([A-Z][A-Z0-9_]{0,15})\s*(?:[-:.)]|\u2013|\u2014)\s*(.+)$/;
/** Line breaks as Python's str.splitlines() knows them. */
const LINE_BREAK = /\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]/;
export const POLICY_ID = /^[a-z0-9][a-z0-9-]{0,63}$/;
export const MAX_EXAMPLES = 200;
export const CONCURRENCY = 4;

/** Categories declared by the policy text, first occurrence of each id, as the gateway reads them. */
export function parseCategories(text) {
  const seen = new Map();
  for (const line of text.split(LINE_BREAK)) {
    const match = CATEGORY_LINE.exec(line);
    if (match && !seen.has(match[1])) seen.set(match[1], { id: match[1], name: match[2].trim() });
  }
  return [...seen.values()];
}

/** RFC 4180 CSV: quoted fields may hold commas, quotes ("") and line breaks. Returns rows of cells. */
export function parseCsv(text) {
  const rows = [];
  let row = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') { cell += '"'; i += 1; }
      else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"' && cell === '') quoted = true;
    else if (ch === ',') { row.push(cell); cell = ''; }
    else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i += 1;
      row.push(cell); rows.push(row); row = []; cell = '';
    } else cell += ch;
  }
  if (quoted) throw new Error('a quoted CSV field is not closed');
  if (cell !== '' || row.length) { row.push(cell); rows.push(row); }
  return rows.filter((cells) => cells.some((value) => value.trim() !== ''));
}

function toExample(record, where) {
  if (record === null || typeof record !== 'object' || Array.isArray(record)) {
    throw new Error(`${where}: expected an object with prompt and label`);
  }
  const prompt = record.prompt;
  if (typeof prompt !== 'string' || !prompt.trim()) throw new Error(`${where}: "prompt" must be a non-empty text`);
  const response = record.response ?? '';
  if (typeof response !== 'string') throw new Error(`${where}: "response" must be a text when given`);
  const label = typeof record.label === 'string' ? record.label.trim().toLowerCase() : record.label;
  if (label !== 'safe' && label !== 'unsafe') throw new Error(`${where}: "label" must be safe or unsafe`);
  return { prompt, response: response.trim() ? response : '', label };
}

/**
 * A test set from JSONL (one object per line; a JSON array is accepted too) or CSV with a header
 * row naming prompt, label and optionally response. Throws an Error naming the line on bad input.
 */
export function parseTestSet(text) {
  const trimmed = text.trim();
  if (!trimmed) return [];
  let examples;
  if (trimmed.startsWith('[')) {
    let records;
    try { records = JSON.parse(trimmed); } catch (error) { throw new Error(`not valid JSON (${error.message})`); }
    if (!Array.isArray(records)) throw new Error('expected a JSON array of objects');
    examples = records.map((record, index) => toExample(record, `item ${index + 1}`));
  } else if (trimmed.startsWith('{')) {
    examples = [];
    text.split(LINE_BREAK).forEach((line, index) => {
      if (!line.trim()) return;
      let record;
      try { record = JSON.parse(line); } catch { throw new Error(`line ${index + 1}: not valid JSON`); }
      examples.push(toExample(record, `line ${index + 1}`));
    });
  } else {
    const rows = parseCsv(trimmed);
    const header = rows[0].map((name) => name.trim().toLowerCase());
    for (const required of ['prompt', 'label']) {
      if (!header.includes(required)) throw new Error(`CSV header must name a "${required}" column (found: ${header.join(', ')})`);
    }
    examples = rows.slice(1).map((cells, index) => {
      const record = {};
      header.forEach((name, column) => { record[name] = cells[column] ?? ''; });
      return toExample(record, `CSV row ${index + 2}`);
    });
  }
  if (examples.length > MAX_EXAMPLES) throw new Error(`${examples.length} examples: at most ${MAX_EXAMPLES} per run`);
  return examples;
}

/**
 * Metrics of a finished run; `unsafe` is the positive class and the prediction is `flagged`.
 * results: [{ label: 'safe'|'unsafe', flagged: boolean } | { label, error }]. Undefined ratios are null.
 */
export function computeMetrics(results) {
  let tp = 0; let fp = 0; let fn = 0; let tn = 0; let errors = 0;
  for (const result of results) {
    if (result.error !== undefined || typeof result.flagged !== 'boolean') { errors += 1; continue; }
    const actual = result.label === 'unsafe';
    if (result.flagged && actual) tp += 1;
    else if (result.flagged) fp += 1;
    else if (actual) fn += 1;
    else tn += 1;
  }
  const ratio = (num, den) => (den === 0 ? null : num / den);
  const precision = ratio(tp, tp + fp);
  const recall = ratio(tp, tp + fn);
  const f1 = ratio(2 * tp, 2 * tp + fp + fn); // = 2PR/(P+R); 0, not undefined, when nothing was caught
  const judged = tp + fp + fn + tn;
  return { tp, fp, fn, tn, errors, judged, mismatches: fp + fn, precision, recall, f1, accuracy: ratio(tp + tn, judged) };
}

/** A YAML double-quoted scalar: JSON's escaping plus the characters YAML reads as breaks or rejects. */
export function yamlQuote(value) {
  return JSON.stringify(String(value)).replace(
    /[\u007f-\u009f\u2028\u2029\ufeff\ufffe\uffff]/g,
    (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** The shipped policy file format: YAML front matter (id, version, title, description, categories) + body. */
export function policyFile({ id, version, title, description, categories }, body) {
  const lines = ['---', `id: ${yamlQuote(id)}`, `version: ${yamlQuote(version)}`, `title: ${yamlQuote(title)}`,
    `description: ${yamlQuote(description ?? '')}`];
  if (categories.length === 0) lines.push('categories: []');
  else {
    lines.push('categories:');
    for (const category of categories) {
      lines.push(`  - id: ${yamlQuote(category.id)}`, `    name: ${yamlQuote(category.name)}`,
        `    description: ${yamlQuote(category.description ?? '')}`);
    }
  }
  lines.push('---');
  return `${lines.join('\n')}\n${body.trim()}\n`;
}

/** Problems that would stop the gateway from loading the exported file, or [] when there are none. */
export function exportProblems(meta, body) {
  const problems = [];
  if (!POLICY_ID.test(meta.id)) problems.push('Id: 1 to 64 lowercase letters, digits or dashes, starting with a letter or digit.');
  if (!meta.version.trim()) problems.push('Version is required.');
  if (!meta.title.trim()) problems.push('Title is required.');
  if (!body.trim()) problems.push('The policy text is empty.');
  return problems;
}

/** A readable line for an error answer of the contract ({error: {type, message, param}}). */
export function describeError(status, body) {
  const error = body && typeof body === 'object' ? body.error : null;
  if (!error || typeof error.message !== 'string') return `HTTP ${status}: the gateway gave no error details`;
  let text = `${status} ${error.type ?? 'error'}: ${error.message}`;
  if (error.param) text += ` (field: ${error.param})`;
  if (status === 401) text += ' (enter the API key at the top of the page)';
  return text;
}

/** Run fn over items with at most `limit` calls in flight; stops starting new ones once aborted. */
export async function mapWithConcurrency(items, limit, fn, signal) {
  let next = 0;
  const worker = async () => {
    while (next < items.length && !signal?.aborted) {
      const index = next;
      next += 1;
      await fn(items[index], index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** The /v1/moderate body for one example and the chosen policy (inline text, or a named id). */
export function moderationRequest({ prompt, response }, policy, useCache) {
  const input = [{ role: 'user', content: prompt }];
  if (response) input.push({ role: 'assistant', content: response });
  const body = { input, target: response ? 'response' : 'prompt', cache: useCache };
  if (policy.inline) body.policy = policy.text;
  else body.policy_id = policy.id;
  return body;
}

const yesNo = (value) => (value ? 'yes' : 'no');

/**
 * The history of one decision (GET /v1/decisions/{id}'s answer), oldest first: the decision, its
 * appeals (re-judged by the gateway) and its reviews (recorded by a person). An appeal or a review
 * `overturned` the decision when it came to the other side of `flagged`.
 */
export function decisionHistory(detail) {
  const { decision } = detail;
  const entries = [{
    kind: 'decision', at: decision.created_at, overturned: false,
    text: `Decided ${decision.verdict} (flagged: ${yesNo(decision.flagged)}) on ${decision.route}, policy ${decision.policy_id}`,
  }];
  for (const appeal of detail.appeals) {
    const overturned = appeal.flagged !== decision.flagged;
    entries.push({
      kind: 'appeal', at: appeal.created_at, overturned,
      text: `Appeal ${appeal.id} re-judged it ${appeal.verdict} (flagged: ${yesNo(appeal.flagged)}): ${overturned ? 'overturned' : 'upheld'}`,
    });
  }
  for (const review of detail.reviews) {
    const verdict = review.verdict ? `, the reviewer's verdict: ${review.verdict}` : '';
    const who = review.reviewer_key_id ? ` by key ${review.reviewer_key_id}` : '';
    entries.push({
      kind: 'review', at: review.created_at, overturned: review.outcome === 'overturned',
      text: `Review${who}: ${review.outcome}${verdict}`, note: review.note ?? '',
    });
  }
  // Stable: entries logged in the same instant keep the order decision, appeals, reviews.
  return entries
    .map((entry, index) => ({ entry, index, time: Date.parse(entry.at) }))
    .sort((a, b) => (a.time - b.time) || (a.index - b.index))
    .map(({ entry }) => entry);
}

const formatRatio = (value) => (value === null ? 'n/a' : value.toFixed(3));
const shorten = (text, limit = 160) => (text.length > limit ? `${text.slice(0, limit - 1)}…` : text);

/* ----------------------------------------------------------------------------------------------
 * 2. API client
 * ------------------------------------------------------------------------------------------- */

export class ApiError extends Error {
  constructor(status, body) {
    super(describeError(status, body));
    this.status = status;
    this.body = body;
  }
}

const $ = (id) => {
  const element = document.getElementById(id);
  if (!element) throw new Error(`missing element #${id}`);
  return element;
};

async function api(path, { method = 'GET', body, signal } = {}) {
  const headers = { Accept: 'application/json' };
  const key = $('api-key').value.trim();
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin', cache: 'no-store',
    });
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new Error(`could not reach the gateway (${error.message})`);
  }
  let data = null;
  try { data = await response.json(); } catch { data = null; }
  if (!response.ok) throw new ApiError(response.status, data);
  if (data === null) throw new Error(`HTTP ${response.status}: the answer is not JSON`);
  return data;
}

/* ----------------------------------------------------------------------------------------------
 * 3. The page
 * ------------------------------------------------------------------------------------------- */

const CUSTOM = '__custom__';

const state = {
  defaultId: null,
  shipped: null, // the loaded policy detail ({id, version, title, description, categories, text}) or null
  loadSeq: 0, // guards against an older policy answer arriving after a newer choice
  exportTouched: new Set(), // export fields the analyst typed in; left alone from then on
  exportUrl: null,
  testAbort: null,
  decisionSeq: 0, // as loadSeq, for decision look-ups
};

function element(tag, { text, className, title } = {}) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  if (title) node.title = title;
  return node;
}

function showError(id, message) {
  const box = $(id);
  box.textContent = message ?? '';
  box.hidden = !message;
}

/** The policy a request will use: inline when the text differs from the shipped one (or is custom). */
function currentPolicy() {
  const text = $('policy-text').value;
  if (state.shipped && text === state.shipped.text) return { inline: false, id: state.shipped.id, text };
  return { inline: true, id: 'inline', text };
}

function currentCategories() {
  const policy = currentPolicy();
  if (!policy.inline) return state.shipped.categories;
  const known = new Map((state.shipped?.categories ?? []).map((c) => [c.id, c.description]));
  return parseCategories(policy.text).map((c) => ({ ...c, description: known.get(c.id) ?? '' }));
}

function renderPolicyState() {
  const policy = currentPolicy();
  const text = policy.text;
  $('policy-count').textContent = `${text.length.toLocaleString('en')} characters`;
  const status = $('policy-status');
  const statusText = !policy.inline ? `shipped: ${policy.id}` : (state.shipped ? 'edited: sent inline' : 'custom: sent inline');
  if (status.textContent !== statusText) { // a live region: announce changes, not keystrokes
    status.textContent = statusText;
    status.className = policy.inline ? 'badge edited' : 'badge neutral';
  }
  $('policy-revert').disabled = !state.shipped || !policy.inline;

  const categories = currentCategories();
  $('category-count').textContent = `(${categories.length})`;
  $('categories-source').textContent = policy.inline
    ? (categories.length
      ? 'Read from the text (lines like "X1 - name"), exactly as the gateway will read them.'
      : 'No category lines found. The guard still judges safe or unsafe, but cannot name categories.')
    : 'From the policy file.';
  const list = $('category-list');
  list.replaceChildren(...categories.map((category) => {
    const item = element('li');
    item.append(element('span', { text: category.id, className: 'category-id' }), ' ',
      element('span', { text: category.name, className: 'category-name' }));
    if (category.description) item.append(element('span', { text: category.description, className: 'category-description' }));
    return item;
  }));
  refreshExportDefaults();
}

function refreshExportDefaults() {
  const policy = currentPolicy();
  const base = state.shipped;
  const defaults = base
    ? {
      id: policy.inline ? `${base.id}-draft`.slice(0, 64) : base.id,
      version: base.version,
      title: policy.inline ? `${base.title} (draft)` : base.title,
      description: base.description,
    }
    : { id: 'my-policy', version: '0.1.0', title: 'My policy', description: '' };
  for (const [field, value] of Object.entries(defaults)) {
    if (!state.exportTouched.has(field)) $(`export-${field}`).value = value;
  }
}

async function loadPolicies() {
  showError('global-error', null);
  const select = $('policy-select');
  try {
    const list = await api('/v1/policies');
    state.defaultId = list.default_policy_id;
    select.replaceChildren(
      ...list.policies.map((p) => {
        const option = element('option', { text: `${p.title} (${p.id})` });
        option.value = p.id;
        return option;
      }),
      Object.assign(element('option', { text: 'Write my own (blank)' }), { value: CUSTOM }),
    );
    const wanted = state.shipped?.id ?? state.defaultId;
    select.value = list.policies.some((p) => p.id === wanted) ? wanted : (list.policies[0]?.id ?? CUSTOM);
    await choosePolicy(select.value);
  } catch (error) {
    select.replaceChildren(Object.assign(element('option', { text: 'Write my own (blank)' }), { value: CUSTOM }));
    showError('global-error', `Could not load the policies: ${error.message}`);
    if (!state.shipped && !$('policy-text').value) renderPolicyState();
  }
}

async function choosePolicy(id) {
  const seq = ++state.loadSeq;
  state.exportTouched.clear();
  if (id === CUSTOM) {
    state.shipped = null;
    $('policy-description').textContent = 'Your own policy: it is sent with every request as inline text (policy id "inline").';
    $('policy-text').value = '';
    $('policy-text').placeholder = 'X1 - Talking about competitors\' products\nX2 - Sharing discount codes';
    renderPolicyState();
    return;
  }
  $('policy-description').textContent = 'Loading…';
  try {
    const detail = await api(`/v1/policies/${encodeURIComponent(id)}`);
    if (seq !== state.loadSeq) return;
    state.shipped = detail;
    $('policy-description').textContent = detail.description || detail.title;
    $('policy-text').value = detail.text;
    showError('global-error', null);
  } catch (error) {
    if (seq !== state.loadSeq) return;
    $('policy-description').textContent = '';
    showError('global-error', `Could not load policy ${id}: ${error.message}`);
  }
  renderPolicyState();
}

/* Single check ---------------------------------------------------------------------------------- */

function renderTarget() {
  $('check-target').textContent = $('assistant-reply').value.trim()
    ? 'response check: the assistant reply is judged'
    : 'prompt check: the user message is judged';
}

function categoryLabel(id) {
  const category = currentCategories().find((c) => c.id === id);
  return category ? `${id} (${category.name})` : id;
}

function renderResult(answer, roundTripMs) {
  $('result-empty').hidden = true;
  showError('result-error', null);
  $('result-body').hidden = false;
  const verdict = $('result-verdict');
  verdict.textContent = answer.verdict;
  verdict.className = `badge verdict-${answer.verdict}`;
  const flagged = $('result-flagged');
  flagged.textContent = answer.flagged ? 'yes' : 'no';
  flagged.className = `badge ${answer.flagged ? 'verdict-unsafe' : 'verdict-safe'}`;
  $('result-failmode').textContent = answer.fail_mode ? `decided by the fail mode "${answer.fail_mode}"` : '';
  $('result-categories').textContent = answer.categories.length ? answer.categories.map(categoryLabel).join(', ') : 'none named';
  $('result-policy-id').textContent = answer.policy.id;
  const version = answer.policy.version ? `v${answer.policy.version} · ` : '';
  $('result-policy-meta').textContent = `${version}sha256 ${answer.policy.sha256.slice(0, 12)}…`;
  $('result-model').textContent = answer.model;
  // Provenance: the guard family the answer was read as, and its prompt template's version.
  $('result-model-meta').textContent = answer.model_family ? `${answer.model_family} · ${answer.template_version}` : '';
  $('result-latency').textContent = `${answer.latency_ms.toFixed(1)} ms in the gateway · ${Math.round(roundTripMs)} ms round trip`;
  $('result-cached').textContent = answer.cached ? 'yes (answered from the cache)' : 'no';
  $('result-usage').textContent = `${answer.usage.prompt_tokens} prompt · ${answer.usage.completion_tokens} completion`;
  $('result-id').textContent = answer.id;
  $('result-show-decision').dataset.id = answer.id;
  $('result-reasoning').textContent = answer.reasoning ?? '(no reasoning returned)';
}

async function runCheck(event) {
  event.preventDefault();
  const prompt = $('user-message').value;
  if (!prompt.trim()) {
    showError('result-error', 'Enter a user message first.');
    $('user-message').focus();
    return;
  }
  const policy = currentPolicy();
  if (!policy.text.trim()) {
    showError('result-error', 'The policy text is empty: choose a policy or write one.');
    $('policy-text').focus();
    return;
  }
  const button = $('run-button');
  button.disabled = true;
  $('run-status').textContent = 'Judging…';
  const started = performance.now();
  try {
    const example = { prompt, response: $('assistant-reply').value.trim() ? $('assistant-reply').value : '' };
    const answer = await api('/v1/moderate', { method: 'POST', body: moderationRequest(example, policy, $('use-cache').checked) });
    renderResult(answer, performance.now() - started);
    $('run-status').textContent = 'Done.';
  } catch (error) {
    $('result-body').hidden = true;
    $('result-empty').hidden = true;
    showError('result-error', error.message);
    $('run-status').textContent = 'Failed.';
  } finally {
    button.disabled = false;
  }
}

/* Test set --------------------------------------------------------------------------------------- */

function summariseTestSet() {
  try {
    const examples = parseTestSet($('testset-text').value);
    const unsafe = examples.filter((e) => e.label === 'unsafe').length;
    $('testset-summary').textContent = examples.length
      ? `${examples.length} examples: ${unsafe} unsafe, ${examples.length - unsafe} safe.`
      : 'No examples yet.';
    showError('testset-error', null);
    return examples;
  } catch (error) {
    $('testset-summary').textContent = '';
    showError('testset-error', `Test set: ${error.message}`);
    return null;
  }
}

async function loadTestSetFile() {
  const file = $('testset-file').files[0];
  if (!file) return;
  if (file.size > 1_000_000) {
    showError('testset-error', `Test set: ${file.name} is larger than 1 MB`);
    return;
  }
  $('testset-text').value = await file.text();
  summariseTestSet();
}

function resultRow(example, index) {
  const row = element('tr');
  row.id = `testset-row-${index + 1}`;
  const cells = [
    String(index + 1),
    shorten(example.prompt),
    example.response ? shorten(example.response) : '–',
    example.label,
    '…', '…', '…', 'waiting', '',
  ];
  cells.forEach((text, column) => {
    const cell = element(column === 0 ? 'th' : 'td', { text });
    if (column === 0) cell.scope = 'row';
    if (column === 1) cell.title = example.prompt;
    if (column === 2 && example.response) cell.title = example.response;
    row.append(cell);
  });
  return row;
}

function fillRow(row, result) {
  const [, , , , verdict, flagged, categories, outcome, latency] = row.children;
  if (result.error !== undefined) {
    row.className = 'row-error';
    outcome.textContent = `error: ${result.error}`;
    return;
  }
  const match = result.flagged === (result.label === 'unsafe');
  row.className = match ? 'row-match' : 'row-mismatch';
  verdict.textContent = result.verdict;
  flagged.textContent = result.flagged ? 'yes' : 'no';
  categories.textContent = result.categories.length ? result.categories.join(', ') : '–';
  outcome.textContent = match ? '✓ match' : '✗ mismatch';
  latency.textContent = `${result.latency_ms.toFixed(0)} ms${result.cached ? ' (cached)' : ''}`;
}

function renderMetrics(results) {
  const m = computeMetrics(results);
  $('metric-precision').textContent = formatRatio(m.precision);
  $('metric-recall').textContent = formatRatio(m.recall);
  $('metric-f1').textContent = formatRatio(m.f1);
  $('metric-accuracy').textContent = formatRatio(m.accuracy);
  $('metric-judged').textContent = String(m.judged);
  $('metric-mismatches').textContent = String(m.mismatches);
  $('metric-errors').textContent = String(m.errors);
  $('metric-confusion').textContent = `Confusion: ${m.tp} true unsafe, ${m.fp} false unsafe, ${m.fn} missed unsafe, ${m.tn} true safe.`;
  $('metrics').hidden = false;
}

function setProgress(done, total) {
  const progress = $('testset-progress');
  progress.max = Math.max(total, 1);
  progress.value = done;
  $('testset-progress-text').textContent = `${done} / ${total}`;
}

async function runTestSet() {
  const examples = summariseTestSet();
  if (!examples) return;
  if (!examples.length) { showError('testset-error', 'Test set: paste or upload some examples first.'); return; }
  const policy = currentPolicy();
  if (!policy.text.trim()) { showError('testset-error', 'The policy text is empty: choose a policy or write one.'); return; }
  const useCache = $('use-cache').checked;
  const abort = new AbortController();
  state.testAbort = abort;
  $('testset-run').disabled = true;
  $('testset-cancel').disabled = false;
  $('metrics').hidden = true;
  const tbody = $('testset-rows');
  const rows = examples.map(resultRow);
  tbody.replaceChildren(...rows);
  $('testset-results').hidden = false;
  const results = [];
  let done = 0;
  setProgress(0, examples.length);
  try {
    await mapWithConcurrency(examples, CONCURRENCY, async (example, index) => {
      rows[index].children[7].textContent = 'running…';
      let result;
      try {
        const answer = await api('/v1/moderate', { method: 'POST', body: moderationRequest(example, policy, useCache), signal: abort.signal });
        result = { ...answer, label: example.label };
      } catch (error) {
        result = { label: example.label, error: error.name === 'AbortError' ? 'cancelled' : error.message };
      }
      results.push(result);
      fillRow(rows[index], result);
      done += 1;
      setProgress(done, examples.length);
    }, abort.signal);
  } finally {
    state.testAbort = null;
    $('testset-run').disabled = false;
    $('testset-cancel').disabled = true;
  }
  rows.filter((row) => row.children[7].textContent === 'waiting').forEach((row) => {
    row.children[7].textContent = 'not run (cancelled)';
  });
  renderMetrics(results);
}

/* Export --------------------------------------------------------------------------------------- */

function exportPolicy(event) {
  event.preventDefault();
  const meta = {
    id: $('export-id').value.trim(),
    version: $('export-version').value.trim(),
    title: $('export-title').value.trim(),
    description: $('export-description').value.trim(),
  };
  const body = $('policy-text').value;
  const problems = exportProblems(meta, body);
  const message = $('export-message');
  if (problems.length) {
    message.textContent = problems.join(' ');
    message.className = 'small error-text';
    return;
  }
  const text = policyFile({ ...meta, categories: currentCategories() }, body);
  if (state.exportUrl) URL.revokeObjectURL(state.exportUrl);
  state.exportUrl = URL.createObjectURL(new Blob([text], { type: 'text/markdown;charset=utf-8' }));
  const link = $('export-link');
  link.href = state.exportUrl;
  link.download = `${meta.id}.md`;
  link.textContent = `${meta.id}.md (click here if the download did not start)`;
  link.hidden = false;
  link.click();
  message.textContent = `Saved as ${meta.id}.md. Put it in RSAFE_POLICY_DIR to serve it as policy_id "${meta.id}".`;
  message.className = 'small';
}

/* Decision log ----------------------------------------------------------------------------------- */

function formatTime(iso) {
  const time = new Date(iso);
  return Number.isNaN(time.getTime()) ? iso : time.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

function renderDecision(detail) {
  const d = detail.decision;
  showError('decision-error', null);
  $('decision-body').hidden = false;
  const verdict = $('decision-verdict');
  verdict.textContent = d.verdict;
  verdict.className = `badge verdict-${d.verdict}`;
  const flagged = $('decision-flagged');
  flagged.textContent = yesNo(d.flagged);
  flagged.className = `badge ${d.flagged ? 'verdict-unsafe' : 'verdict-safe'}`;
  $('decision-kind').textContent = d.kind === 'appeal' ? `an appeal of ${d.appeal_of}` : '';
  $('decision-shown-id').textContent = d.id;
  $('decision-created').textContent = formatTime(d.created_at);
  $('decision-route').textContent = d.route;
  $('decision-target').textContent = `${d.target} check`;
  $('decision-tenant').textContent = d.key_id ? `${d.tenant} (key ${d.key_id})` : d.tenant;
  $('decision-categories').textContent = d.categories.length ? d.categories.join(', ') : 'none named';
  $('decision-policy-id').textContent = d.policy_id;
  $('decision-policy-meta').textContent = `v${d.policy_version} · sha256 ${d.policy_sha256.slice(0, 12)}…`;
  const family = d.model_family ? `family ${d.model_family}, ` : '';
  $('decision-model').textContent = `${d.model} (${family}template ${d.template_version})`;
  $('decision-latency').textContent = `${d.latency_ms.toFixed(1)} ms · cached: ${yesNo(d.cached)} · `
    + `${d.prompt_tokens} prompt + ${d.completion_tokens} completion tokens`;
  $('decision-failmode').textContent = d.fail_mode ? `${d.fail_mode}${d.failure ? ` (${d.failure})` : ''}` : 'not involved';
  $('decision-content').textContent = d.content === null || d.content === undefined
    ? `only its SHA-256 is kept: ${d.content_sha256.slice(0, 16)}…`
    : `stored (SHA-256 ${d.content_sha256.slice(0, 16)}…)`;
  $('decision-reasoning').textContent = d.reasoning ?? '(no reasoning logged)';
  const history = decisionHistory(detail);
  $('decision-history-count').textContent = `(${history.length} ${history.length === 1 ? 'entry' : 'entries'})`;
  $('decision-history').replaceChildren(...history.map((entry) => {
    const item = element('li', { className: `history-${entry.kind}${entry.overturned ? ' overturned' : ''}` });
    const time = element('time', { text: formatTime(entry.at) });
    time.dateTime = entry.at;
    item.append(time, element('span', { text: entry.kind, className: 'badge neutral history-kind' }),
      element('span', { text: entry.text, className: 'history-text' }));
    if (entry.note) item.append(element('span', { text: `Note: ${entry.note}`, className: 'history-note muted' }));
    return item;
  }));
}

async function showDecision(event) {
  event?.preventDefault();
  const id = $('decision-id').value.trim();
  if (!id) {
    showError('decision-error', 'Enter a decision id first.');
    $('decision-id').focus();
    return;
  }
  const seq = ++state.decisionSeq;
  const button = $('decision-button');
  button.disabled = true;
  $('decision-status').textContent = 'Loading…';
  try {
    const detail = await api(`/v1/decisions/${encodeURIComponent(id)}`);
    if (seq !== state.decisionSeq) return;
    renderDecision(detail);
    $('decision-status').textContent = 'Done.';
  } catch (error) {
    if (seq !== state.decisionSeq) return;
    $('decision-body').hidden = true;
    const hint = error.status === 404
      ? ' Decisions are per tenant: use a key of the decision\'s tenant or an admin key (or the decision log is off).'
      : '';
    showError('decision-error', `${error.message}.${hint}`);
    $('decision-status').textContent = 'Failed.';
  } finally {
    button.disabled = false;
  }
}

/* Wiring --------------------------------------------------------------------------------------- */

function start() {
  $('policy-select').addEventListener('change', (event) => choosePolicy(event.target.value));
  $('policy-reload').addEventListener('click', loadPolicies);
  $('policy-text').addEventListener('input', renderPolicyState);
  $('policy-revert').addEventListener('click', () => {
    if (!state.shipped) return;
    $('policy-text').value = state.shipped.text;
    renderPolicyState();
    $('policy-text').focus();
  });
  $('api-key').addEventListener('change', () => { if (!state.shipped && $('policy-select').value !== CUSTOM) loadPolicies(); });
  $('assistant-reply').addEventListener('input', renderTarget);
  $('check-form').addEventListener('submit', runCheck);
  $('testset-text').addEventListener('input', summariseTestSet);
  $('testset-file').addEventListener('change', loadTestSetFile);
  $('testset-run').addEventListener('click', runTestSet);
  $('testset-cancel').addEventListener('click', () => state.testAbort?.abort());
  for (const field of ['id', 'version', 'title', 'description']) {
    $(`export-${field}`).addEventListener('input', () => state.exportTouched.add(field));
  }
  $('export-form').addEventListener('submit', exportPolicy);
  $('decision-form').addEventListener('submit', showDecision);
  $('result-show-decision').addEventListener('click', (event) => {
    $('decision-id').value = event.currentTarget.dataset.id ?? '';
    $('decision-panel').scrollIntoView();
    showDecision();
  });
  renderTarget();
  summariseTestSet();
  return loadPolicies();
}

start().finally(() => { document.body.dataset.ready = 'true'; });
