// The cellcensus portal: the service's JSON API in a browser, with no rules of its own.
//
// Every value the service sends is shown as text (textContent, never HTML): the page's
// Content-Security-Policy enforces Trusted Types, so parsing a string as HTML would throw.
// The bearer token stays in this tab's sessionStorage (gone with the tab), never in a cookie:
// the browser sends nothing on its own, so another site cannot act as the signed-in user.
// The service checks every parameter: its refusal is shown word for word.

const API = new URL("../", document.baseURI); // the page is at API/portal/
const SESSION_KEY = "cellcensus.session";
const POLL_MS = 1000;
const FORMATS = [
  ["csv", "CSV"],
  ["json", "JSON"],
  ["geojson", "GeoJSON"],
  ["parquet", "Parquet"],
];
const STATUSES = {
  queued: "waiting to run",
  running: "running",
  awaiting_approval: "awaiting a data steward's approval",
  released: "released",
  failed: "failed, nothing released",
  rejected: "rejected by a data steward, nothing released",
};
const UNFINISHED = new Set(["queued", "running"]);
const JOBS_PER_PAGE = 25; // GET /jobs?limit=: the newest page first, older ones on request
const MOST_JOBS_PER_PAGE = 1000; // the most GET /jobs answers at once
const AUDIT_PER_PAGE = 50; // audit entries shown at once, older ones on request
const AUDITORS = new Set(["auditor", "steward"]); // the roles GET /audit answers

const $ = (id) => document.getElementById(id);
// The column names of the tables whose cells stack on a narrow screen (a module runs once the
// page is parsed).
const columnsOf = (id) =>
  [...document.querySelectorAll(`#${id} thead th`)].map((th) => th.textContent);
const JOB_COLUMNS = columnsOf("jobs");
const USER_COLUMNS = columnsOf("users");
const AUDIT_COLUMNS = columnsOf("audit");
const POLICY_COLUMNS = columnsOf("policies");
const ALL = "*"; // the policy key of every algorithm without changes of its own
let session = null; // {token, username, role, expiresAt, mustChange}
let catalogue = null; // GET /algorithms
let polling = null;
let jobList = { jobs: new Map(), next: null, paged: false }; // shown jobs by id; next page
let auditOldest = 0; // sequence number of the oldest audit entry shown
let people = new Map(); // the steward's GET /users by name: the chosen user's state
// Whose scopes the scopes field shows, and whether the steward typed in it since: a refresh
// of the users never overwrites a field being edited (focused, or changed and not saved).
let scopesField = { user: null, edited: false };
// The steward's stored policy changes (GET /policies) and the policies in force, by algorithm;
// the stored noise settings the policy form does not show, sent back as they were; whether the
// steward changed the form since it was filled (a refresh then leaves it as it is).
let policies = { changes: new Map(), inForce: new Map(), keptNoise: {}, edited: false };

// ---------------------------------------------------------------- the API

class Refusal extends Error {
  // A problem document (RFC 9457) the service answered with, or a network failure.
  constructor(status, title, detail) {
    super(detail || title);
    this.status = status;
    this.title = title;
    this.detail = detail;
  }
}

async function call(path, { method = "GET", body } = {}) {
  const headers = {};
  if (session) headers.Authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let answer;
  try {
    answer = await fetch(new URL(path, API), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch (error) {
    throw new Refusal(0, "No answer", `The service did not answer (${error.message}).`);
  }
  if (answer.ok) return answer;
  let problem = {};
  try {
    problem = await answer.json();
  } catch {
    // not a problem document: the status says it all
  }
  const refusal = new Refusal(
    answer.status,
    String(problem.title || answer.statusText || "Error"),
    String(problem.detail || ""),
  );
  if (answer.status === 401 && session && path !== "auth/logout") {
    endSession();
    show("signed-out");
    announce("");
  }
  throw refusal;
}

async function callJson(path, options) {
  const answer = await call(path, options);
  return answer.status === 204 ? null : answer.json();
}

// ---------------------------------------------------------------- messages

let announcements = 0; // how many messages so far, so a slow load's message yields to a newer one

function announce(text) {
  // A polite message (status region): what just happened.
  announcements += 1;
  $("notice").textContent = text;
}

const loads = new Map(); // an element's id → its newest load's number, and how many are out

async function latest(id, fetch, draw) {
  // Answers can arrive out of order (the sign-in's load, a refresh, the reload after a
  // change): only the newest load's answer is drawn, so a slower, older one never hides a
  // change. The element is marked busy while any is out, for assistive technology.
  const state = loads.get(id) || { newest: 0, out: 0 };
  loads.set(id, state);
  const load = ++state.newest;
  state.out += 1;
  $(id).setAttribute("aria-busy", "true");
  try {
    const answer = await fetch();
    if (state.newest === load) draw(answer);
  } finally {
    state.out -= 1;
    if (!state.out) $(id).removeAttribute("aria-busy");
  }
}

async function enterThenAnnounce(message) {
  // The view is usable as soon as it shows: what the person did while the rest loaded
  // is newer news than the sign-in itself, so it is not overwritten.
  const before = announcements;
  await enter();
  if (announcements === before) announce(message());
}

function report(error, doing) {
  // The service's refusal, word for word, in the alert region.
  const box = $("problem");
  box.replaceChildren();
  if (!error) return;
  const heading = el("p", { className: "problem-title" }, doing);
  const said = el("p", {});
  if (error.status) said.append(`The service said (${error.status} ${error.title}): `);
  said.append(el("span", { className: "said" }, error.detail || error.title));
  box.append(heading, said);
  box.focus();
}

function clearProblem() {
  // A new action: the messages of the last one go.
  $("problem").replaceChildren();
  $("notice").textContent = "";
}

// ---------------------------------------------------------------- building the page

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "attrs") {
      for (const [name, text] of Object.entries(value)) node.setAttribute(name, text);
    } else {
      node[key] = value;
    }
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function cell(...children) {
  return el("td", {}, ...children);
}

function lines(texts) {
  const block = el("div");
  for (const text of texts) block.append(el("div", {}, text));
  return block;
}

function time(stamp, { seconds = false } = {}) {
  return stamp ? stamp.slice(0, seconds ? 19 : 16).replace("T", " ") : "";
}

function plain(value) {
  if (value === null || value === undefined) return "none";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (Array.isArray(value)) return value.length ? value.map(plain).join(", ") : "none";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function label(name) {
  return name.replaceAll("_", " ");
}

// ---------------------------------------------------------------- session

function loadSession() {
  try {
    const stored = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
    // Milliseconds; a session an older portal kept (an ISO time) signs in again.
    if (stored && typeof stored.expiresAt === "number" && stored.expiresAt > Date.now()) {
      return stored;
    }
  } catch {
    // unreadable: sign in again
  }
  sessionStorage.removeItem(SESSION_KEY);
  return null;
}

function endSession() {
  session = null;
  sessionStorage.removeItem(SESSION_KEY);
  if (polling) clearTimeout(polling);
  polling = null;
  // Nothing of the session stays in the page, hidden or not: the next person at this
  // browser signs in to a blank page.
  jobList = { jobs: new Map(), next: null, paged: false };
  people = new Map();
  scopesField = { user: null, edited: false };
  policies = { changes: new Map(), inForce: new Map(), keptNoise: {}, edited: false };
  for (const id of ["budget", "jobs", "budgets", "policies", "users", "audit"]) {
    $(id).tBodies[0].replaceChildren();
  }
  for (const id of ["approvals", "release-view", "budget-analyst", "user-choice", "quota",
    "total-budget", "policy-algorithm", "policy-algorithm-state"]) {
    $(id).replaceChildren();
  }
  $("release-view").hidden = true;
  $("audit-verdict").hidden = true;
  // Typed and unsent, or a user's name and scopes: emptied too.
  for (const id of [
    "current-password",
    "new-password",
    "repeat-password",
    "change-password-username",
    "new-user-name",
    "new-user-password",
    "user-scopes",
    "reset-username",
    "reset-password",
    "policy-min-count",
    "policy-rounding",
    "policy-secondary",
    "policy-noise",
    "policy-epsilon",
    "policy-delta",
  ]) {
    $(id).value = "";
  }
  for (const box of document.querySelectorAll("#policy-form input[type='checkbox']")) {
    box.checked = false;
  }
  $("user-choice-state").textContent = "";
  $("toggle-active").textContent = "Deactivate the user";
  $("reset-password-label").textContent = "New password for the user";
}

function show(view) {
  const signedIn = view !== "signed-out";
  $("sign-in").hidden = signedIn;
  $("account").hidden = !signedIn;
  $("change-password").hidden = view !== "change-password";
  $("analyst").hidden = view !== "analyst";
  $("steward").hidden = view !== "steward";
  $("audit-log").hidden = !AUDITORS.has(view);
  $("other-role").hidden = view !== "other";
  if (signedIn) {
    $("account-name").textContent = session.username;
    $("account-role").textContent = session.role;
  }
}

async function signIn(event) {
  event.preventDefault();
  clearProblem();
  const username = $("username").value.trim();
  const password = $("password").value;
  const missing = [username ? null : "user name", password ? null : "password"].filter(Boolean);
  if (missing.length) {
    // Not sent: an empty field would spend a login attempt and an entry in the audit log.
    report(new Refusal(0, "Not sent", `Type your ${missing.join(" and ")}.`), "Not signed in.");
    $(username ? "password" : "username").focus();
    return;
  }
  try {
    const token = await callJson("auth/token", { method: "POST", body: { username, password } });
    session = {
      token: token.access_token,
      username: token.username, // who the service says, not what was typed
      role: token.role,
      expiresAt: token.expires_at * 1000, // Unix seconds, kept in milliseconds as Date.now()
      mustChange: token.must_change_password === true,
    };
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
    $("password").value = "";
    if (session.mustChange) return askForPassword();
    await enterThenAnnounce(() => `Signed in as ${session.username}.`);
  } catch (error) {
    report(error, "Signing in failed.");
    $("password").focus();
  }
}

async function signOut() {
  clearProblem();
  try {
    await call("auth/logout", { method: "POST" });
  } catch (error) {
    // The token is dropped all the same; say why the service did not revoke it.
    report(error, "The service did not confirm the sign-out; this page forgot the token.");
  }
  endSession();
  show("signed-out");
  announce("Signed out.");
  $("username").value = ""; // the next person at this browser starts from a blank form
  $("username").focus();
}

function askForPassword() {
  // A steward set the password: every route but the password change answers 403 until then.
  show("change-password");
  $("change-password-username").value = session.username; // for password managers
  announce(`Signed in as ${session.username}. A data steward set your password: choose your own.`);
  $("current-password").focus();
}

async function changePassword(event) {
  event.preventDefault();
  clearProblem();
  const current = $("current-password").value;
  const chosen = $("new-password").value;
  if (chosen !== $("repeat-password").value) {
    // A typing slip, caught before anything is sent; the service judges the password itself.
    report(
      new Refusal(0, "Not sent", "The new password and its repetition differ: type it again."),
      "The password was not changed.",
    );
    $("repeat-password").focus();
    return;
  }
  try {
    await busy($("change-password-button"), () =>
      call("auth/password", {
        method: "POST",
        body: { current_password: current, new_password: chosen },
      }),
    );
  } catch (error) {
    report(error, "The password was not changed.");
    return;
  }
  for (const id of ["current-password", "new-password", "repeat-password"]) $(id).value = "";
  session.mustChange = false;
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  try {
    await enterThenAnnounce(
      () => `Your password is changed. Signed in as ${session.username}.`,
    );
  } catch (error) {
    report(error, "Your password is changed, but the page could not be loaded.");
  }
}

async function busy(buttons, action) {
  // The button (or each of a form's buttons) is disabled until the answer (a second press
  // would send the request again); disabled, it loses the focus, which a keyboard user gets
  // back where they were.
  const all = [buttons].flat();
  const focused = all.find((button) => document.activeElement === button);
  for (const button of all) button.disabled = true;
  try {
    return await action();
  } finally {
    for (const button of all) button.disabled = false;
    if (focused && document.activeElement === document.body) focused.focus();
  }
}

async function enter() {
  // Who the token belongs to, as the service knows it (every role may ask).
  const me = await callJson("me");
  session.username = me.username;
  session.role = me.role;
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  const view = ["analyst", "steward", "auditor"].includes(session.role) ? session.role : "other";
  show(view);
  $("sign-out").focus(); // where the sign-in form was, which is now hidden
  if (view === "analyst") {
    await loadCatalogue(me.scopes || []); // first: the jobs' parameters fold at its defaults
    await Promise.all([loadBudget(me), loadJobs()]);
  } else if (view === "steward") {
    catalogue = await callJson("algorithms");
    await Promise.all([loadApprovals(), loadUsers(), loadTotal(), loadPolicies(), loadAudit()]);
  } else if (view === "auditor") {
    await loadAudit();
  }
}

// ---------------------------------------------------------------- budget

async function loadBudget(known = null) {
  await latest("budget", async () => known || callJson("me"), showBudget);
}

function showBudget(me) {
  const rows = me.budget.map((entry) =>
    el(
      "tr",
      {},
      cell(entry.project),
      el("td", { className: "num" }, formatNumber(entry.epsilon_left)),
      el("td", { className: "num" }, formatNumber(entry.delta_left)),
    ),
  );
  const none = el(
    "tr",
    {},
    el("td", { colSpan: 3 }, "No budget in any project yet: ask the data steward for one."),
  );
  $("budget").tBodies[0].replaceChildren(...(rows.length ? rows : [none]));
  const quota = me.quota;
  $("quota").textContent =
    `Jobs today: ${quota.jobs_today} of ${quota.jobs_per_day}. ` +
    `Your scopes: ${me.scopes.length ? me.scopes.join("; ") : "none (ask the steward)"}.`;
  const project = $("project");
  const chosen = project.value;
  project.replaceChildren(
    ...me.budget.map((entry) => el("option", { value: entry.project }, entry.project)),
  );
  // Keep the analyst's choice; else start at the first project with budget left.
  const funded = me.budget.find((entry) => entry.epsilon_left > 0);
  if (me.budget.some((entry) => entry.project === chosen)) project.value = chosen;
  else if (funded) project.value = funded.project;
}

function formatNumber(value) {
  return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(6)));
}

// ---------------------------------------------------------------- catalogue and form

function resolve(schema, root) {
  // A property's schema with $ref followed and "X or null" reduced to X.
  let node = schema;
  let nullable = false;
  if (node.$ref) node = { ...lookup(root, node.$ref), ...withoutRef(node) };
  if (Array.isArray(node.anyOf)) {
    const kinds = node.anyOf.filter((option) => option.type !== "null");
    nullable = kinds.length < node.anyOf.length;
    if (kinds.length === 1) node = { ...resolve(kinds[0], root).node, ...withoutAnyOf(node) };
  }
  return { node, nullable };
}

function withoutRef(node) {
  const copy = { ...node };
  delete copy.$ref;
  return copy;
}

function withoutAnyOf(node) {
  const copy = { ...node };
  delete copy.anyOf;
  return copy;
}

function lookup(root, ref) {
  // "#/$defs/Name" within the algorithm's parameter schema.
  return ref
    .replace(/^#\//, "")
    .split("/")
    .reduce((node, key) => (node ? node[key] : undefined), root) || {};
}

function bounds(node) {
  // The schema's bounds in words (the service, not this page, enforces them).
  const items = node.type === "array" ? node.items || {} : node;
  const low =
    items.minimum !== undefined
      ? ["at least", items.minimum]
      : items.exclusiveMinimum !== undefined
        ? ["more than", items.exclusiveMinimum]
        : null;
  const high =
    items.maximum !== undefined
      ? ["at most", items.maximum]
      : items.exclusiveMaximum !== undefined
        ? ["less than", items.exclusiveMaximum]
        : null;
  const list = node.type === "array";
  const parts = [];
  if (node.enum) return `one of ${node.enum.map(plain).join(", ")}`;
  if (items.pattern) parts.push(`${list ? "texts" : "a text"} of ${shape(items.pattern)}`);
  if (items.type === "integer") parts.push(list ? "whole numbers" : "a whole number");
  else if (items.type === "number" && (low || high)) parts.push(list ? "numbers" : "a number");
  if (low && high && low[0] === "at least" && high[0] === "at most") {
    parts.push(`from ${low[1]} to ${high[1]}`);
  } else {
    const range = [low, high].filter(Boolean).map(([words, value]) => `${words} ${value}`);
    if (range.length) parts.push(range.join(", "));
  }
  if (node.format === "date") parts.push("a date");
  if (node.type === "boolean") parts.push("yes or no");
  if (list) {
    parts.unshift(parts.length ? "a comma-separated list of" : "a comma-separated list");
    if (node.maxItems !== undefined) parts.push(`(up to ${node.maxItems})`);
  }
  return parts.join(" ");
}

function shape(pattern) {
  // A text's format in words: "8 digits" for ^[0-9]{8}$, else the pattern itself.
  const digits = /^\^\[0-9\]\{(\d+)\}\$$/.exec(pattern);
  return digits ? `${digits[1]} digits` : `the form ${pattern}`;
}

function inputPattern(node) {
  // The schema's pattern as an input's pattern attribute (a list's: items separated by
  // commas), so that the browser marks a value of the wrong form; the service still judges.
  const list = node.type === "array";
  const pattern = (list ? node.items || {} : node).pattern;
  const anchored = typeof pattern === "string" && /^\^.*\$$/.test(pattern);
  if (!anchored) return null;
  const one = `(?:${pattern.slice(1, -1)})`;
  return list ? `\\s*${one}\\s*(?:,\\s*${one}\\s*)*` : one;
}

function describe(node, hasDefault, required) {
  const parts = [];
  if (node.description) parts.push(node.description);
  const range = bounds(node);
  if (range) parts.push(`Allowed: ${range}.`);
  if (required) parts.push("Required.");
  else if (hasDefault && node.default === null) parts.push("Leave empty for the default.");
  else if (hasDefault) parts.push(`Default: ${plain(node.default)}.`);
  return parts.join(" ");
}

function parameterRows(schema, root = schema, within = []) {
  // Each parameter, nested groups walked: {path, node, nullable, required, hasDefault}.
  const rows = [];
  const required = new Set(schema.required || []);
  for (const [name, property] of Object.entries(schema.properties || {})) {
    const { node, nullable } = resolve(property, root);
    const path = [...within, name];
    if (node.type === "object" && node.properties) {
      rows.push(...parameterRows(node, root, path));
    } else {
      const hasDefault = "default" in node;
      rows.push({ path, node, nullable, required: required.has(name), hasDefault });
    }
  }
  return rows;
}

function allowedBy(scopes) {
  // The first algorithm of the catalogue one of the analyst's scopes names (or "*"), with
  // that scope's level when it names one; null when no scope names any. A preselection only:
  // the service judges every job against the scopes.
  for (const algorithm of catalogue.algorithms) {
    for (const scope of scopes) {
      const [name, level] = String(scope).split(":");
      if (name === "*" || name === algorithm.name) {
        return { algorithm: algorithm.name, level: level && level !== "*" ? level : null };
      }
    }
  }
  return null;
}

async function loadCatalogue(scopes) {
  catalogue = await callJson("algorithms");
  const select = $("algorithm");
  const chosen = select.value;
  select.replaceChildren(
    ...catalogue.algorithms.map((algorithm) =>
      el("option", { value: algorithm.name }, `${algorithm.name} ${algorithm.version}`),
    ),
  );
  const allowed = allowedBy(scopes);
  const level = $("level");
  level.replaceChildren(...catalogue.levels.map((name) => el("option", { value: name }, name)));
  if (catalogue.levels.includes("municipality")) level.value = "municipality";
  if (catalogue.algorithms.some((algorithm) => algorithm.name === chosen)) {
    select.value = chosen;
  } else if (allowed) {
    select.value = allowed.algorithm;
    if (allowed.level && catalogue.levels.includes(allowed.level)) level.value = allowed.level;
  }
  showCatalogue();
  buildForm();
}

function showCatalogue() {
  const blocks = catalogue.algorithms.map((algorithm) => {
    const rows = parameterRows(algorithm.parameters_schema).map((row) =>
      el(
        "tr",
        {},
        el("th", { scope: "row" }, row.path.map(label).join(", ")),
        cell(row.required ? "required" : defaultText(row)),
        cell(bounds(row.node)),
        cell(row.node.description || ""),
      ),
    );
    const table = el(
      "table",
      {},
      el("caption", {}, `Parameters of ${algorithm.name}`),
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          ...["Parameter", "Default", "Allowed", "Meaning"].map((text) =>
            el("th", { scope: "col" }, text),
          ),
        ),
      ),
      el("tbody", {}, ...rows),
    );
    return el(
      "article",
      { className: "algorithm" },
      el("h3", {}, algorithm.name),
      el("p", {}, algorithm.summary),
      el(
        "p",
        { className: "muted" },
        `Version ${algorithm.version}, ${algorithm.certification} (${algorithm.origin}); ` +
          `releases ${algorithm.outputs.join(", ")}.`,
      ),
      el(
        "details",
        {},
        el("summary", {}, `Its ${rows.length} parameters`),
        el("div", { className: "wide" }, table),
      ),
    );
  });
  $("catalogue").replaceChildren(...blocks);
}

function defaultText(row) {
  if (!row.hasDefault) return "";
  return row.node.default === null ? "empty" : plain(row.node.default);
}

function chosenAlgorithm() {
  return catalogue.algorithms.find((algorithm) => algorithm.name === $("algorithm").value);
}

function buildForm() {
  const algorithm = chosenAlgorithm();
  $("algorithm-summary").textContent = algorithm ? algorithm.summary : "";
  if (!algorithm) return $("parameter-fields").replaceChildren();
  const fields = parameterRows(algorithm.parameters_schema).map((row, index) =>
    field(row, `parameter-${index}`),
  );
  $("parameter-fields").replaceChildren(...fields);
}

function field(row, id) {
  const { node } = row;
  const hintId = `${id}-hint`;
  const name = row.path.map(label).join(", ");
  let input;
  if (node.enum) {
    input = el(
      "select",
      {},
      ...node.enum.map((value) => el("option", { value: JSON.stringify(value) }, plain(value))),
    );
    if (row.hasDefault) input.value = JSON.stringify(node.default);
  } else if (node.type === "boolean") {
    input = el("input", { type: "checkbox", checked: Boolean(node.default) });
  } else if (node.format === "date") {
    input = el("input", { type: "date" });
    if (typeof node.default === "string") input.value = node.default;
  } else {
    const numeric = ["integer", "number"].includes(node.type);
    const list = node.type === "array";
    input = el("input", {
      type: "text",
      inputMode: numeric ? (node.type === "integer" ? "numeric" : "decimal") : "text",
      autocomplete: "off",
      spellcheck: false,
    });
    if (row.hasDefault && node.default !== null) {
      input.value = list ? node.default.join(", ") : String(node.default);
    }
    const pattern = inputPattern(node);
    if (pattern) input.pattern = pattern;
  }
  input.id = id;
  input.dataset.path = JSON.stringify(row.path);
  input.dataset.kind = node.enum ? "enum" : node.type || node.format || "text";
  input.dataset.items = node.type === "array" ? (node.items || {}).type || "" : "";
  if (row.hasDefault) input.dataset.default = JSON.stringify(node.default);
  input.setAttribute("aria-describedby", hintId);
  if (row.required) input.setAttribute("aria-required", "true");
  const hint = el("p", { className: "hint", id: hintId }, describe(node, row.hasDefault, row.required));
  const caption = el("label", { htmlFor: id }, name + (row.required ? " (required)" : ""));
  const kind = node.type === "boolean" ? "field check" : "field";
  return node.type === "boolean"
    ? el("div", { className: kind }, el("div", {}, input, " ", caption), hint)
    : el("div", { className: kind }, caption, input, hint);
}

function typed(text) {
  // What was typed, as the number it spells, or as the text itself for the service to judge.
  const trimmed = text.trim();
  if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(trimmed)) return Number(trimmed);
  return trimmed;
}

function fieldValue(input) {
  // The field's value, or undefined to leave the parameter at the service's default.
  const kind = input.dataset.kind;
  if (kind === "enum") return JSON.parse(input.value);
  if (kind === "boolean") return input.checked;
  const text = input.value.trim();
  if (text === "") return undefined;
  if (kind === "array") {
    const numbers = ["integer", "number"].includes(input.dataset.items);
    return text.split(",").map((item) => (numbers ? typed(item) : item.trim()));
  }
  if (kind === "integer" || kind === "number") return typed(text);
  return text;
}

function parameters() {
  const chosen = {};
  for (const input of $("parameter-fields").querySelectorAll("[data-path]")) {
    const value = fieldValue(input);
    if (value === undefined) continue;
    if ("default" in input.dataset && JSON.stringify(value) === input.dataset.default) continue;
    const path = JSON.parse(input.dataset.path);
    let group = chosen;
    for (const name of path.slice(0, -1)) group = group[name] ??= {};
    group[path[path.length - 1]] = value;
  }
  return chosen;
}

async function submitJob(event) {
  event.preventDefault();
  clearProblem();
  const body = {
    algorithm: $("algorithm").value,
    parameters: parameters(),
    level: $("level").value,
    project: $("project").value || "default",
  };
  try {
    await busy($("submit-job"), async () => {
      const job = await callJson("jobs", { method: "POST", body });
      const reused = job.cached ? ", reusing an earlier identical result" : "";
      announce(`Job ${job.id} submitted: ${STATUSES[job.status] || job.status}${reused}.`);
      await Promise.all([loadJobs({ keepOlder: true }), loadBudget()]);
    });
  } catch (error) {
    report(error, "The service refused the job.");
  }
}

// ---------------------------------------------------------------- jobs

async function loadJobs({ keepOlder = false } = {}) {
  // The newest page of jobs: alone, or above the older pages shown already.
  await latest("jobs", () => callJson(`jobs?limit=${JOBS_PER_PAGE}`), (page) => {
    if (!keepOlder) jobList = { jobs: new Map(), next: null, paged: false };
    if (!jobList.paged) jobList.next = nextBefore(page);
    keepJobs(page.jobs);
    showJobs();
    watch(shownJobs());
  });
}

async function loadOlderJobs() {
  // The page after the oldest one shown, below it: from the service's links.next.
  await busy($("older-jobs"), async () => {
    const query = new URLSearchParams({ limit: JOBS_PER_PAGE, before: jobList.next });
    const page = await callJson(`jobs?${query}`);
    jobList.next = nextBefore(page);
    jobList.paged = true;
    keepJobs(page.jobs);
    showJobs();
    const all = jobList.next ? "" : " These are all your jobs.";
    announce(`${page.jobs.length} older jobs shown, ${jobList.jobs.size} in all.${all}`);
    if (!jobList.next) $("jobs-heading").focus(); // the button is gone: not focus with it
  });
}

function nextBefore(page) {
  // The job the next (older) page starts before, from its link; null on the last page.
  const next = page.links && page.links.next;
  return next ? new URL(next, API).searchParams.get("before") : null;
}

function keepJobs(jobs) {
  for (const job of jobs) jobList.jobs.set(job.id, job);
}

function shownJobs() {
  // Newest first, as the service lists them: by submission time, then by id.
  const key = (job) => `${job.created_at} ${job.id}`;
  return [...jobList.jobs.values()].sort((a, b) => (key(a) > key(b) ? -1 : 1));
}

function showJobs() {
  // A row whose job is unchanged is kept, not drawn again: the poll each second must not
  // take the keyboard focus (or a screen reader's place) from a link in the table.
  const jobs = shownJobs();
  const body = $("jobs").tBodies[0];
  const drawn = new Map([...body.rows].map((row) => [row.dataset.job, row]));
  const rows = jobs.map((job) => {
    const shown = JSON.stringify(job);
    const row = drawn.get(job.id);
    if (row && row.dataset.shown === shown) return row;
    const fresh = jobRow(job);
    fresh.dataset.shown = shown;
    return fresh;
  });
  rows.forEach((row, k) => {
    if (body.rows[k] !== row) body.insertBefore(row, body.rows[k] || null);
  });
  while (body.rows.length > rows.length) body.lastElementChild.remove();
  $("jobs").hidden = jobs.length === 0;
  $("no-jobs").hidden = jobs.length > 0;
  $("older-jobs").hidden = !jobList.next;
}

function watch(jobs) {
  // While a job runs, look again each second; say when each one ends.
  if (polling) clearTimeout(polling);
  polling = null;
  const running = jobs.filter((job) => UNFINISHED.has(job.status)).map((job) => job.id);
  if (!running.length) return;
  polling = setTimeout(async () => {
    polling = null;
    const asked = session;
    if (!asked) return;
    try {
      const page = await callJson(`jobs?limit=${watchedLimit(running)}`);
      if (session !== asked) return; // signed out (or in as another) while it was asked
      const now = page.jobs;
      const ended = now.filter((job) => running.includes(job.id) && !UNFINISHED.has(job.status));
      keepJobs(now); // the newest page again; older pages shown stay
      if (!jobList.paged) jobList.next = nextBefore(page);
      showJobs();
      if (ended.length) {
        announce(ended.map((job) => `Job ${job.id}: ${STATUSES[job.status] || job.status}.`).join(" "));
        await loadBudget();
      }
      watch(shownJobs());
    } catch (error) {
      report(error, "The list of jobs could not be updated.");
    }
  }, POLL_MS);
}

function watchedLimit(running) {
  // The newest page, or as many jobs as reach the oldest one watched: a job shown from an
  // older page is seen to end too, by the same one request.
  const shown = shownJobs().map((job) => job.id);
  const oldest = Math.max(...running.map((id) => shown.indexOf(id)));
  return Math.min(MOST_JOBS_PER_PAGE, Math.max(JOBS_PER_PAGE, oldest + 1));
}

function jobRow(job) {
  const row = el(
    "tr",
    { attrs: { "data-job": job.id } },
    el("td", { className: "code" }, job.id),
    el("td", { className: "time" }, time(job.created_at)),
    cell(lines([job.algorithm, `version ${job.version}`])),
    cell(lines([job.level, job.project])),
    el("td", { className: "params" }, parameterList(job.parameters, defaultsOf(job))),
    cell(cost(job)),
    el("td", { className: "status" }, status(job)),
    cell(downloads(job)),
  );
  return labelled(row, JOB_COLUMNS);
}

function labelled(row, columns) {
  // Each cell names its column, which a narrow screen shows beside it (portal.css).
  [...row.cells].forEach((td, index) => td.setAttribute("data-label", columns[index] || ""));
  return row;
}

function flatten(value, within = []) {
  // Each parameter as [its path of names, its value], nested groups walked.
  const out = [];
  for (const [name, setting] of Object.entries(value || {})) {
    const path = [...within, name];
    if (setting && typeof setting === "object" && !Array.isArray(setting)) {
      out.push(...flatten(setting, path));
    } else {
      out.push([path, setting]);
    }
  }
  return out;
}

function defaultsOf(job) {
  // The defaults of the job's algorithm version, by path, when the catalogue holds it.
  const algorithm = (catalogue?.algorithms || []).find(
    (entry) => entry.name === job.algorithm && entry.version === job.version,
  );
  if (!algorithm) return null;
  const rows = parameterRows(algorithm.parameters_schema).filter((row) => row.hasDefault);
  return new Map(rows.map((row) => [JSON.stringify(row.path), JSON.stringify(row.node.default)]));
}

function parameterList(value, defaults) {
  // The parameters the job chose, then those at their defaults folded under their count.
  const line = ([path, setting]) => `${path.map(label).join(", ")}: ${plain(setting)}`;
  const all = flatten(value);
  const usual = ([path, setting]) =>
    defaults !== null && defaults.get(JSON.stringify(path)) === JSON.stringify(setting);
  const chosen = all.filter((item) => !usual(item)).map(line);
  const folded = all.filter(usual).map(line);
  const block = lines(chosen);
  if (folded.length) {
    const summary = chosen.length
      ? `${folded.length} more at their defaults`
      : `the algorithm's defaults (${folded.length} parameters)`;
    block.append(el("details", {}, el("summary", {}, summary), lines(folded)));
  } else if (!chosen.length) {
    block.append("the algorithm's defaults");
  }
  return block;
}

function cost(job) {
  if (job.cached) return "none (reuses an earlier identical result)";
  if (!job.epsilon) return "none";
  return job.delta ? `ε = ${job.epsilon}, δ = ${job.delta}` : `ε = ${job.epsilon}`;
}

function status(job) {
  const parts = [STATUSES[job.status] || job.status];
  if (UNFINISHED.has(job.status) && job.stage) parts.push(`(${job.stage})`);
  const block = lines([parts.join(" ")]);
  if (job.error) block.append(el("div", { className: "error" }, job.error));
  return block;
}

function downloads(job) {
  if (job.status !== "released") {
    const over = ["failed", "rejected"].includes(job.status);
    return document.createTextNode(over ? "none" : "not yet");
  }
  // Only the formats the service offers for this release (no GeoJSON without an area column).
  const offered = new Set(job.formats || []);
  const group = el("div", { className: "downloads" });
  if (offered.has("json")) {
    const view = el("button", { type: "button" }, "View");
    view.setAttribute("aria-label", `View the result of job ${job.id}`);
    view.addEventListener("click", () => viewRelease(job));
    group.append(view);
  }
  for (const [format, name] of FORMATS.filter(([format]) => offered.has(format))) {
    const button = el("button", { type: "button" }, name);
    button.setAttribute("aria-label", `Download the result of job ${job.id} as ${name}`);
    button.addEventListener("click", () => download(job, format, name));
    group.append(button);
  }
  return group;
}

async function download(job, format, name) {
  clearProblem();
  try {
    const answer = await call(`jobs/${job.id}/result?format=${format}`);
    const blob = await answer.blob();
    const link = el("a", {
      href: URL.createObjectURL(blob),
      download: filename(answer) || `${job.id}.${format}`,
    });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    announce(`The result of job ${job.id} is downloading as ${name}.`);
  } catch (error) {
    report(error, `The result of job ${job.id} could not be downloaded as ${name}.`);
  }
}

async function viewRelease(job) {
  clearProblem();
  try {
    const release = await callJson(`jobs/${job.id}/result?format=json`);
    const view = $("release-view");
    view.replaceChildren(
      el("h3", { id: "release-heading", tabIndex: -1 }, `The result of job ${job.id}`),
      el("p", {}, `${job.algorithm} ${job.version} at the ${job.level} level.`),
      releaseFacts(release),
      el("div", { className: "wide" }, releaseTable(release, "The release")),
    );
    view.hidden = false;
    $("release-heading").focus();
  } catch (error) {
    report(error, `The result of job ${job.id} could not be shown.`);
  }
}

function releaseFacts(release) {
  // What the holder published beside the counts (period, shares, days missing) and the
  // disclosure rules the counts passed: what an analyst needs to read them.
  const facts = [
    ...flatten(release.published || {}),
    ...flatten(release.provenance?.policy || {}).map(([path, value]) => [
      ["disclosure", ...path],
      value,
    ]),
  ];
  return el(
    "dl",
    { className: "facts" },
    ...facts.flatMap(([path, value]) => [
      el("dt", {}, label(path.join(" "))),
      el("dd", {}, plain(value)),
    ]),
  );
}

function filename(answer) {
  const match = /filename="([^"]+)"/.exec(answer.headers.get("Content-Disposition") || "");
  return match ? match[1] : null;
}

// ---------------------------------------------------------------- steward

async function loadApprovals() {
  await latest("approvals", () => callJson("approvals"), ({ approvals }) => {
    $("approvals").replaceChildren(...approvals.map(approvalBlock));
    $("no-approvals").hidden = approvals.length > 0;
  });
}

async function loadUsers() {
  // Two requests whatever the number of users: the users, then every budget at once. The
  // budgets, the users and the forms' selects are all drawn from these answers.
  await latest(
    "users",
    () => Promise.all([callJson("users"), callJson("budgets")]),
    ([{ users }, { budgets }]) => {
      showBudgets(users, budgets);
      showUsers(users);
    },
  );
}

function showBudgets(users, budgets) {
  const analysts = users.filter((user) => user.role === "analyst");
  const rows = analysts.flatMap((user) => {
    const inactive = user.active ? "" : " (deactivated)";
    const entries = budgets.filter((entry) => entry.analyst === user.username);
    if (!entries.length) {
      return [
        el("tr", {}, cell(user.username + inactive), el("td", { colSpan: 5 }, "no budget")),
      ];
    }
    return entries.map((entry) =>
      el(
        "tr",
        {},
        cell(user.username + inactive),
        cell(entry.project),
        ...[entry.epsilon_total, entry.epsilon_left, entry.delta_total, entry.delta_left].map(
          (value) => el("td", { className: "num" }, formatNumber(value)),
        ),
      ),
    );
  });
  const none = el("tr", {}, el("td", { colSpan: 6 }, "No analyst is registered yet."));
  $("budgets").tBodies[0].replaceChildren(...(rows.length ? rows : [none]));
  refill($("budget-analyst"), analysts.map((user) => user.username));
}

function refill(select, values) {
  // New options, the one chosen kept while it is still offered.
  const chosen = select.value;
  select.replaceChildren(...values.map((value) => el("option", { value }, value)));
  if (values.includes(chosen)) select.value = chosen;
}

function userPath(name, tail = "") {
  return `users/${encodeURIComponent(name)}${tail}`;
}

function typedNumber(id) {
  // The service judges every value (a number, its bounds): sent as typed, an empty or
  // unreadable number as null, which it refuses by name.
  const text = $(id).value.trim();
  return text === "" || Number.isNaN(Number(text)) ? null : Number(text);
}

async function setBudget(event) {
  event.preventDefault();
  clearProblem();
  const analyst = $("budget-analyst").value;
  const body = {
    project: $("budget-project").value.trim(),
    epsilon: typedNumber("budget-epsilon"),
    delta: typedNumber("budget-delta"),
  };
  let left;
  try {
    left = await busy($("set-budget"), () =>
      callJson(userPath(analyst, "/budget"), { method: "PUT", body }),
    );
  } catch (error) {
    report(error, `The budget of ${analyst} was not set.`);
    return;
  }
  announce(
    `The budget of ${analyst} in project ${left.project} is set: ` +
      `ε ${formatNumber(left.epsilon_left)} and δ ${formatNumber(left.delta_left)} left.`,
  );
  await reloadAfterChange(loadUsers);
}

async function reloadAfterChange(...loads) {
  // A steward's change made: what it changed drawn again, and the audit log, which records
  // it. A failure here is said apart, as the change itself was made.
  try {
    await Promise.all([...loads.map((load) => load()), loadAudit()]);
  } catch (error) {
    report(error, "The change is made, but the page could not be updated to show it.");
  }
}

async function loadTotal() {
  // The budget of all analysts together, or none (404 until a steward sets one).
  await latest(
    "total-budget",
    async () => {
      try {
        return await callJson("budgets/total");
      } catch (error) {
        if (!(error instanceof Refusal && error.status === 404)) throw error;
        return null;
      }
    },
    showTotal,
  );
}

function showTotal(total) {
  $("total-budget").textContent = total
    ? `All analysts together: ε ${formatNumber(total.epsilon_left)} left of ` +
      `${formatNumber(total.epsilon_total)}, δ ${formatNumber(total.delta_left)} left of ` +
      `${formatNumber(total.delta_total)}.`
    : "No budget of all analysts together is set: each analyst's alone bounds their releases.";
}

async function setTotal(event) {
  event.preventDefault();
  clearProblem();
  const body = { epsilon: typedNumber("total-epsilon"), delta: typedNumber("total-delta") };
  let total;
  try {
    total = await busy($("set-total"), () => callJson("budgets/total", { method: "PUT", body }));
  } catch (error) {
    report(error, "The budget of all analysts was not set.");
    return;
  }
  showTotal(total); // the service's answer: the standing it set
  announce(`The budget of all analysts is set: ε ${formatNumber(total.epsilon_left)} left.`);
  await reloadAfterChange();
}

// ---------------------------------------------------------------- release policies

function policyNames() {
  // `*`, then each algorithm of the catalogue once (whatever its versions).
  return [ALL, ...new Set(catalogue.algorithms.map((algorithm) => algorithm.name))];
}

function policyTitle(name) {
  return name === ALL ? "* (every algorithm without its own)" : name;
}

function policyPath(name) {
  return `policies/${encodeURIComponent(name)}`;
}

async function loadPolicies() {
  // The stored changes, and the policy in force of `*` and of each algorithm: one request
  // each, as the service lists only the changes.
  const names = policyNames();
  await latest(
    "policies",
    () => Promise.all([callJson("policies"), ...names.map((name) => callJson(policyPath(name)))]),
    ([{ policies: stored }, ...inForce]) => showPolicies(names, stored, inForce),
  );
}

function showPolicies(names, stored, inForce) {
  policies.changes = new Map(stored.map((entry) => [entry.algorithm, entry]));
  policies.inForce = new Map(inForce.map((policy) => [policy.algorithm, policy]));
  $("policies").tBodies[0].replaceChildren(...inForce.map(policyRow));
  const select = $("policy-algorithm");
  const chosen = select.value;
  select.replaceChildren(...names.map((name) => el("option", { value: name }, policyTitle(name))));
  if (names.includes(chosen)) select.value = chosen;
  // The form shows the choice's changes as now stored, unless the steward is editing it.
  showPolicyChoice({ fill: !policies.edited });
}

function appliedChanges(name) {
  // The stored changes the policy of `name` is made of: its own, else those of `*`.
  const own = policies.changes.get(name);
  if (own || name === ALL) return { changes: own || null, from: own ? "its own changes" : null };
  const all = policies.changes.get(ALL);
  return { changes: all || null, from: all ? "the changes of *" : null };
}

function policyRow(policy) {
  // Each value the stored changes set is marked "changed": the API lists the changes apart.
  const { changes, from } = appliedChanges(policy.algorithm);
  const set = changes ? changes.disclosure : {};
  const noise = "dp" in set ? set.dp : undefined; // null: the change removes the noise
  const noiseSet = (field) => noise === null || (noise !== undefined && field in noise);
  const { disclosure } = policy;
  const dp = disclosure.dp;
  const value = (text, changed) =>
    el(
      "td",
      {},
      el("span", { className: "value" }, text),
      ...(changed ? [" ", el("span", { className: "set" }, "changed")] : []),
    );
  const row = el(
    "tr",
    { attrs: { "data-policy": policy.algorithm } },
    cell(policyTitle(policy.algorithm)),
    cell(from || "the defaults"),
    value(formatNumber(disclosure.min_count), "min_count" in set),
    value(formatNumber(disclosure.rounding_base), "rounding_base" in set),
    value(plain(disclosure.secondary_suppression), "secondary_suppression" in set),
    value(dp ? mechanismName(dp.mechanism) : "none", noiseSet("mechanism")),
    value(dp ? formatNumber(dp.epsilon) : "none", noiseSet("epsilon")),
    value(dp ? formatNumber(dp.delta) : "none", noiseSet("delta")),
    value(plain(policy.require_approval), changes !== null),
    value(plain(policy.allowed_certifications), changes !== null),
  );
  return labelled(row, POLICY_COLUMNS);
}

function mechanismName(mechanism) {
  return { laplace: "Laplace", gaussian: "Gaussian" }[mechanism] || String(mechanism);
}

function policyWords(policy) {
  // The policy in force in a sentence, as `cellcensus policies` says it.
  const { disclosure } = policy;
  const dp = disclosure.dp;
  let noise = "no noise";
  if (dp) {
    noise = `${mechanismName(dp.mechanism)} noise ε ${formatNumber(dp.epsilon)}`;
    if (dp.delta) noise += ` δ ${formatNumber(dp.delta)}`;
  }
  return (
    `counts of ${formatNumber(disclosure.min_count)} or fewer withheld, rounded to ` +
    `${formatNumber(disclosure.rounding_base)}, ${noise}, approval ` +
    `${plain(policy.require_approval)}, may run ${plain(policy.allowed_certifications)}`
  );
}

function showPolicyChoice({ fill = true } = {}) {
  // The chosen policy's state; with `fill`, its stored changes ready to edit (the approval
  // and the levels that may run as they are in force).
  const name = $("policy-algorithm").value;
  if (!name) return;
  const own = policies.changes.get(name);
  let state;
  if (own) state = `Changes of its own: ${changeWords(own)}.`;
  else if (name === ALL) state = "No changes: every algorithm without its own has its default.";
  else if (policies.changes.has(ALL)) state = "No changes of its own: the changes of * apply.";
  else state = "No changes: its default applies.";
  $("policy-algorithm-state").textContent = state;
  if (!fill) return;
  policies.edited = false;
  const set = own ? own.disclosure : {};
  const text = (field) => (field in set ? String(set[field]) : "");
  $("policy-min-count").value = text("min_count");
  $("policy-rounding").value = text("rounding_base");
  $("policy-secondary").value =
    "secondary_suppression" in set ? plain(set.secondary_suppression) : "";
  const noise = "dp" in set ? set.dp : undefined;
  const stored = noise && typeof noise === "object" ? noise : {};
  $("policy-noise").value = noise === null ? "none" : stored.mechanism || "";
  $("policy-epsilon").value = "epsilon" in stored ? String(stored.epsilon) : "";
  $("policy-delta").value = "delta" in stored ? String(stored.delta) : "";
  const { epsilon, delta, mechanism, ...kept } = stored;
  policies.keptNoise = kept;
  const inForce = policies.inForce.get(name);
  $("policy-approval").checked = Boolean(inForce && inForce.require_approval);
  const levels = new Set(inForce ? inForce.allowed_certifications : []);
  for (const box of document.querySelectorAll("#policy-levels input")) {
    box.checked = levels.has(box.value);
  }
  showNoiseFields();
}

function changeWords(stored) {
  // A stored change in words: each disclosure field it sets, the approval and the levels.
  const parts = flatten(stored.disclosure).map(([path, value]) =>
    path.join() === "dp" && value === null ? "no noise" : detail(path.join(" "), value),
  );
  parts.push(`approval ${plain(stored.require_approval)}`);
  parts.push(`may run ${plain(stored.allowed_certifications)}`);
  return parts.join(", ");
}

function showNoiseFields() {
  // Without noise there is no ε or δ to set.
  const none = $("policy-noise").value === "none";
  $("policy-epsilon").disabled = none;
  $("policy-delta").disabled = none;
}

function policyBody() {
  // Only what the steward set: an empty field or "default" is left out, the service keeping
  // the algorithm's default; the values go as typed, the service judges them.
  const disclosure = {};
  const given = (id) => {
    const text = $(id).value.trim();
    return text === "" ? undefined : typed(text);
  };
  const minCount = given("policy-min-count");
  if (minCount !== undefined) disclosure.min_count = minCount;
  const rounding = given("policy-rounding");
  if (rounding !== undefined) disclosure.rounding_base = rounding;
  const secondary = $("policy-secondary").value;
  if (secondary) disclosure.secondary_suppression = secondary === "yes";
  const mechanism = $("policy-noise").value;
  if (mechanism === "none") {
    disclosure.dp = null;
  } else {
    const dp = { ...policies.keptNoise };
    if (mechanism) dp.mechanism = mechanism;
    const epsilon = given("policy-epsilon");
    if (epsilon !== undefined) dp.epsilon = epsilon;
    const delta = given("policy-delta");
    if (delta !== undefined) dp.delta = delta;
    if (Object.keys(dp).length) disclosure.dp = dp;
  }
  const body = {};
  if (Object.keys(disclosure).length) body.disclosure = disclosure;
  body.require_approval = $("policy-approval").checked;
  body.allowed_certifications = [
    ...document.querySelectorAll("#policy-levels input:checked"),
  ].map((box) => box.value);
  return body;
}

async function setPolicy(event) {
  event.preventDefault();
  clearProblem();
  const name = $("policy-algorithm").value;
  let policy;
  try {
    policy = await busy($("set-policy"), () =>
      callJson(policyPath(name), { method: "PUT", body: policyBody() }),
    );
  } catch (error) {
    report(error, `The policy of ${name} was not set.`);
    return;
  }
  announce(`The policy of ${name} is set: ${policyWords(policy)}.`);
  policies.edited = false; // saved: the reload fills the form with the changes as now kept
  await reloadAfterChange(loadPolicies);
}

// ---------------------------------------------------------------- users

function showUsers(users) {
  const rows = users.map((user) =>
    labelled(
      el(
        "tr",
        { attrs: { "data-user": user.username } },
        cell(user.username + (user.username === session.username ? " (you)" : "")),
        cell(user.role),
        cell(plain(user.active)),
        el("td", { className: "scopes" }, user.scopes.length ? lines(user.scopes) : "none"),
        cell(plain(user.must_change_password)),
      ),
      USER_COLUMNS,
    ),
  );
  $("users").tBodies[0].replaceChildren(...rows);
  people = new Map(users.map((user) => [user.username, user]));
  refill($("user-choice"), users.map((user) => user.username));
  showChoice();
}

function showChoice() {
  // The chosen user's state and actions: their scopes ready to edit, and a password reset
  // unless they are the steward signed in (whose current password the service wants: 409).
  const user = people.get($("user-choice").value);
  if (!user) return;
  const own = user.username === session.username;
  const state = `${user.role}, ${user.active ? "active" : "deactivated"}`;
  $("user-choice-state").textContent = own ? `${state} (you).` : `${state}.`;
  const field = $("user-scopes");
  const editing =
    scopesField.user === user.username &&
    (scopesField.edited || document.activeElement === field);
  if (!editing) {
    field.value = user.scopes.join(", ");
    scopesField = { user: user.username, edited: false };
  }
  $("reset-username").value = user.username; // for password managers
  $("toggle-active").textContent = `${user.active ? "Deactivate" : "Activate"} ${user.username}`;
  $("reset-password-label").textContent = `New password for ${user.username}`;
  $("reset-form").hidden = own;
  $("own-password").hidden = !own;
}

async function changeUser({ button, path, method, body, done, refused }) {
  // One change, said once made (`done` of the service's answer), then the users drawn again
  // as the service now has them. Answers whether it was made.
  clearProblem();
  let answer;
  try {
    answer = await busy(button, () => callJson(path, { method, body }));
  } catch (error) {
    report(error, refused);
    return false;
  }
  announce(done(answer));
  await reloadAfterChange(loadUsers);
  return true;
}

async function addUser(event) {
  // Sent as typed: the service judges the name, the role and the password.
  event.preventDefault();
  const body = {
    username: $("new-user-name").value,
    role: $("new-user-role").value,
    password: $("new-user-password").value,
  };
  const added = await changeUser({
    button: $("add-user"),
    path: "users",
    method: "POST",
    body,
    done: (user) => `${user.username} is added as ${user.role}.`,
    refused: "The user was not added.",
  });
  if (!added) return;
  $("new-user-name").value = "";
  $("new-user-password").value = "";
  if (people.has(body.username) && !scopesField.edited) {
    $("user-choice").value = body.username; // chosen below, for their scopes (unless the
    showChoice(); // steward is editing another user's, which stay)
  }
}

async function setScopes(event) {
  // Space- or comma-separated, sent as a list (an empty field as none).
  event.preventDefault();
  const name = $("user-choice").value;
  await changeUser({
    button: $("set-scopes"),
    path: userPath(name, "/scopes"),
    method: "PUT",
    body: { scopes: $("user-scopes").value.split(/[\s,]+/).filter(Boolean) },
    done: (user) => {
      scopesField = { user: null, edited: false }; // saved: the service's list shows next
      return `The scopes of ${name} are set: ${plain(user.scopes)}.`;
    },
    refused: `The scopes of ${name} were not set.`,
  });
}

async function toggleActive() {
  // The service refuses to deactivate the last active steward (409), and revokes every token
  // of a user it deactivates.
  const user = people.get($("user-choice").value);
  if (!user) return;
  const active = !user.active;
  const verb = active ? "activated" : "deactivated";
  await changeUser({
    button: $("toggle-active"),
    path: userPath(user.username),
    method: "PATCH",
    body: { active },
    done: () => `${user.username} is ${verb}.`,
    refused: `${user.username} was not ${verb}.`,
  });
}

async function resetPassword(event) {
  event.preventDefault();
  const name = $("user-choice").value;
  const reset = await changeUser({
    button: $("reset-password-button"),
    path: userPath(name, "/password"),
    method: "PUT",
    body: { password: $("reset-password").value },
    done: () =>
      `The password of ${name} is reset: their tokens are revoked, and they choose their ` +
      "own at their next sign-in.",
    refused: `The password of ${name} was not reset.`,
  });
  if (reset) $("reset-password").value = "";
}

function approvalBlock({ job, release }) {
  const id = `decide-${job.id}`;
  const table = releaseTable(release);
  const reason = el("textarea", { id: `${id}-reason`, rows: 2, required: true });
  const form = el(
    "form",
    { className: "decision", noValidate: true },
    el(
      "label",
      { htmlFor: reason.id },
      "Reason for the decision (required; recorded in the audit log; a rejection's is shown " +
        "to the analyst)",
    ),
    reason,
    el(
      "div",
      { className: "buttons" },
      el("button", { type: "submit", value: "approve" }, "Approve the release"),
      el("button", { type: "submit", value: "reject", className: "reject" }, "Reject it"),
    ),
  );
  form.addEventListener("submit", (event) => decide(event, job, reason));
  return el(
    "article",
    { className: "approval", attrs: { "data-job": job.id } },
    el("h3", {}, `Job ${job.id}`),
    el(
      "p",
      {},
      `${job.analyst} ran ${job.algorithm} ${job.version} at the ${job.level} level ` +
        `(project ${job.project}) on ${time(job.created_at)} UTC; privacy cost ${cost(job)}.`,
    ),
    parameterList(job.parameters, defaultsOf(job)),
    el("div", { className: "wide" }, table),
    form,
  );
}

function releaseTable(release, caption = "The release as checked") {
  // The columns in the release's own order (its rows' fields come sorted by name); a count
  // the disclosure rules held back is null: "withheld", not "none", which reads as zero.
  const rows = Array.isArray(release.table) ? release.table : [];
  const given = Array.isArray(release.columns) ? release.columns : [];
  const named = given.map((column) => column.name);
  const columns = named.length ? named : rows.length ? Object.keys(rows[0]) : [];
  return el(
    "table",
    {},
    el("caption", {}, `${caption}: ${rows.length} rows${withheldOf(rows)}`),
    el("thead", {}, el("tr", {}, ...columns.map((name) => el("th", { scope: "col" }, name)))),
    el(
      "tbody",
      {},
      ...rows.map((row) => el("tr", {}, ...columns.map((name) => cell(released(row[name]))))),
    ),
  );
}

function withheldOf(rows) {
  const withheld = rows.filter((row) => row.device_count === null).length;
  return withheld ? `, ${withheld} withheld by the disclosure rules` : "";
}

function released(value) {
  return value === null || value === undefined ? "withheld" : plain(value);
}

async function decide(event, job, reason) {
  event.preventDefault();
  clearProblem();
  const approve = event.submitter ? event.submitter.value === "approve" : false;
  const buttons = [...event.currentTarget.querySelectorAll("button")]; // one decision at once
  try {
    const done = await busy(buttons, () =>
      callJson(`approvals/${job.id}`, {
        method: "POST",
        body: { approve, reason: reason.value },
      }),
    );
    announce(`Job ${job.id}: ${STATUSES[done.status] || done.status}.`);
  } catch (error) {
    report(error, `The decision on job ${job.id} was refused.`);
    if (!reason.value.trim()) reason.focus(); // the service asks for the reason first
    return;
  }
  await reloadAfterChange(loadApprovals);
  $("approvals-heading").focus();
}

// ---------------------------------------------------------------- audit log

async function loadAudit() {
  // The newest page: where the chain ends, then the entries up to there.
  await latest(
    "audit",
    async () => {
      const { head_seq: head } = await callJson("audit?limit=1");
      const after = Math.max(0, head - AUDIT_PER_PAGE);
      return [after, await callJson(`audit?after=${after}&limit=${AUDIT_PER_PAGE}`)];
    },
    ([after, page]) => {
      const none = el("tr", {}, el("td", { colSpan: 6 }, "The audit log is empty."));
      const rows = auditRows(page.entries);
      $("audit").tBodies[0].replaceChildren(...(rows.length ? rows : [none]));
      showOlderAudit(after);
    },
  );
}

async function loadOlderAudit() {
  // The entries just before the oldest one shown, below it.
  await busy($("older-audit"), async () => {
    const after = Math.max(0, auditOldest - 1 - AUDIT_PER_PAGE);
    const page = await callJson(`audit?after=${after}&limit=${auditOldest - 1 - after}`);
    $("audit").tBodies[0].append(...auditRows(page.entries));
    showOlderAudit(after);
    const all = after === 0 ? " These are all the entries." : "";
    announce(`${page.entries.length} older entries of the audit log shown.${all}`);
    if (after === 0) $("audit-heading").focus(); // the button is gone: not focus with it
  });
}

function showOlderAudit(after) {
  auditOldest = after + 1;
  $("older-audit").hidden = after === 0;
}

function auditRows(entries) {
  // Newest first; the details as "name: value" lines, every value as text.
  return [...entries].reverse().map((entry) => {
    const details = Object.entries(entry.details).map(([name, value]) => detail(name, value));
    const row = el(
      "tr",
      { attrs: { "data-seq": entry.seq } },
      el("td", { className: "num" }, String(entry.seq)),
      el("td", { className: "time" }, time(entry.at, { seconds: true })),
      cell(entry.actor),
      cell(entry.action),
      el("td", { className: "long" }, entry.target),
      el("td", { className: "long" }, lines(details)),
    );
    return labelled(row, AUDIT_COLUMNS);
  });
}

function detail(name, value) {
  return `${label(name)}: ${plain(value)}`;
}

async function verifyAudit() {
  // The service recomputes every hash of the chain and names the first entry that fails.
  const verdict = await callJson("audit/verify");
  const text = verdict.ok
    ? `The chain checks: ${verdict.entries} entries, the last #${verdict.head_seq} with ` +
      `hash ${verdict.head_hash}.`
    : `The chain is broken at entry #${verdict.first_bad}: ${verdict.reason}`;
  const shown = $("audit-verdict");
  shown.textContent = text;
  shown.className = verdict.ok ? "verdict" : "verdict broken";
  shown.hidden = false;
  announce(verdict.ok ? "The audit chain checks." : text); // where it breaks, said in full
}

// ---------------------------------------------------------------- start

async function guarded(action, doing) {
  clearProblem();
  try {
    await action();
  } catch (error) {
    report(error, doing);
  }
}

function clicks(id, action, doing) {
  // A button whose action's refusal is reported as `doing` failed.
  $(id).addEventListener("click", () => guarded(action, doing));
}

function refreshes(id, load, done, doing) {
  // A refresh button: load again, then say it is `done`.
  clicks(
    id,
    async () => {
      await load();
      announce(done);
    },
    doing,
  );
}

function start() {
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  $("change-password-form").addEventListener("submit", changePassword);
  $("job-form").addEventListener("submit", submitJob);
  $("algorithm").addEventListener("change", buildForm);
  refreshes(
    "refresh-jobs",
    () => Promise.all([loadJobs(), loadBudget()]),
    "The list of jobs is up to date.",
    "The list of jobs could not be loaded.",
  );
  clicks("older-jobs", loadOlderJobs, "The older jobs could not be loaded.");
  refreshes(
    "refresh-approvals",
    loadApprovals,
    "The list of releases awaiting approval is up to date.",
    "The releases awaiting approval could not be loaded.",
  );
  refreshes(
    "refresh-budgets",
    () => Promise.all([loadUsers(), loadTotal()]),
    "The budgets are up to date.",
    "The budgets could not be loaded.",
  );
  $("budget-form").addEventListener("submit", setBudget);
  $("total-form").addEventListener("submit", setTotal);
  refreshes(
    "refresh-users",
    loadUsers,
    "The users are up to date.",
    "The users could not be loaded.",
  );
  refreshes(
    "refresh-policies",
    loadPolicies,
    "The release policies are up to date.",
    "The release policies could not be loaded.",
  );
  $("policy-algorithm").addEventListener("change", () => showPolicyChoice());
  $("policy-noise").addEventListener("change", showNoiseFields);
  $("policy-form").addEventListener("submit", setPolicy);
  $("policy-form").addEventListener("input", (event) => {
    if (event.target !== $("policy-algorithm")) policies.edited = true;
  });
  $("add-user-form").addEventListener("submit", addUser);
  $("user-choice").addEventListener("change", showChoice);
  $("user-scopes").addEventListener("input", () => {
    scopesField.edited = true;
  });
  // Left unchanged, the field shows the scopes as the last refresh had them.
  $("user-scopes").addEventListener("blur", () => scopesField.edited || showChoice());
  $("scopes-form").addEventListener("submit", setScopes);
  $("toggle-active").addEventListener("click", toggleActive);
  $("reset-form").addEventListener("submit", resetPassword);
  refreshes(
    "refresh-audit",
    loadAudit,
    "The audit log is up to date.",
    "The audit log could not be loaded.",
  );
  clicks("older-audit", loadOlderAudit, "The older audit entries could not be loaded.");
  clicks("verify-audit", verifyAudit, "The audit chain could not be checked.");
  session = loadSession();
  if (session && session.mustChange) {
    askForPassword();
  } else if (session) {
    guarded(enter, "The portal could not load your data.");
  } else {
    show("signed-out");
  }
}

start();
