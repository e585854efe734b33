// The Scale Mesh web page: the same `/api/v1` and log WebSocket the CLI uses, with the token
// the person pastes in. Plain DOM, no framework. Data from the API and the build logs is only
// ever inserted as text (createElement + textContent), never parsed as HTML.
'use strict';

const TOKEN_KEY = 'scalemesh.token';
const RUNNING = new Set(['queued', 'building', 'uploading']);
const MAX_LOG_LINES = 20000;
const REFRESH_MS = 5000;
const FOLLOW_SLACK_PX = 30;

const $ = (id) => document.getElementById(id);
const enc = encodeURIComponent;

// ---------------------------------------------------------------------------------------------
// API

class ApiError extends Error {
  constructor(status, code, message, field, errors) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field || null;
    /** When several fields were wrong: each of them, as `{code, message, field}`. */
    this.errors = Array.isArray(errors) ? errors : [];
  }
}

const getToken = () => sessionStorage.getItem(TOKEN_KEY);

/** One call to `/api/v1`; resolves to the JSON answer, rejects with an ApiError. A 401 signs out. */
async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${getToken() || ''}`, Accept: 'application/json' };
  const init = { method, headers, cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(`/api/v1${path}`, init);
  } catch {
    throw new ApiError(0, 'network', 'Could not reach the Scale Mesh server: check that it is running and try again.');
  }
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) {
    const detail = (data && data.error) || {};
    const err = new ApiError(res.status, detail.code || `http_${res.status}`,
      detail.message || `The server answered ${res.status} ${res.statusText}.`, detail.field, detail.errors);
    if (res.status === 401) signOut(err.message);
    throw err;
  }
  return data;
}

// ---------------------------------------------------------------------------------------------
// Small DOM and formatting helpers

/** An element with optional classes, attributes and children (strings become text nodes). */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  el.append(...children.filter((c) => c !== null && c !== undefined));
  return el;
}

const isWebUrl = (url) => typeof url === 'string' && /^https?:\/\//i.test(url);

/** URL-like `text` as text nodes with a line-break opportunity (<wbr>) after each `/` (not in
 * `scheme://`) and before each `.`, `?`, `&` and `#`: a long URL wraps between its parts, not
 * mid-word. The text itself is unchanged. */
function breakable(text) {
  const nodes = [];
  for (const part of String(text).split(/(?<=\/)(?!\/)|(?=[.?&#])/)) {
    if (nodes.length > 0) nodes.push(document.createElement('wbr'));
    nodes.push(part);
  }
  return nodes;
}

/** Set `el`'s text to URL-like `text`, wrapping between its parts. */
function setBreakable(el, text) {
  el.replaceChildren(...breakable(text || ''));
  return el;
}

/** Point a link at `url` if it is http(s); otherwise it shows the text and links nowhere. */
function setLink(a, url) {
  setBreakable(a, url);
  if (isWebUrl(url)) a.href = url;
  else a.removeAttribute('href');
  return a;
}

const externalLink = (url, cls) =>
  setLink(h('a', { class: cls, target: '_blank', rel: 'noopener noreferrer' }), url);

/** A status badge: the raw status as text and in `data-status` (colour is never the only cue). */
function setStatus(el, status) {
  el.textContent = status;
  el.dataset.status = status;
  return el;
}

const statusBadge = (status) => setStatus(h('span', { class: 'status' }), status);

/** "42s", "1m 05s", "2h 03m 04s". */
function formatDuration(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const s = total % 60;
  const m = Math.floor(total / 60) % 60;
  const hrs = Math.floor(total / 3600);
  const pad = (n) => String(n).padStart(2, '0');
  if (hrs > 0) return `${hrs}h ${pad(m)}m ${pad(s)}s`;
  if (m > 0) return `${m}m ${pad(s)}s`;
  return `${s}s`;
}

/** "just now", "3 min ago", "5 h ago", "2 days ago", then the date; for a time to come (a
 * token's expiry) "in 3 min", "in 5 h", "tomorrow", "in 90 days", past a year the date. */
function relativeTime(iso) {
  const then = Date.parse(iso);
  const secs = Math.round((Date.now() - then) / 1000);
  if (Math.abs(secs) < 45) return 'just now';
  const span = (text) => (secs > 0 ? `${text} ago` : `in ${text}`);
  const mins = Math.round(Math.abs(secs) / 60);
  if (mins < 60) return span(`${mins} min`);
  const hrs = Math.round(mins / 60);
  if (hrs < 24) return span(`${hrs} h`);
  const days = Math.round(hrs / 24);
  if (days === 1) return secs > 0 ? 'yesterday' : 'tomorrow';
  // Past a month ago, the date; a time to come in days for a year (30d, 90d and 1y tokens).
  if (days < (secs > 0 ? 30 : 366)) return span(`${days} days`);
  return new Date(then).toLocaleDateString();
}

/** A <time> showing a relative time, the absolute one in its title; kept fresh by a ticker. */
function timeEl(iso) {
  if (!iso) return h('span', { class: 'muted', text: 'never' });
  return h('time', { datetime: iso, title: new Date(iso).toLocaleString(), 'data-relative': true,
    text: relativeTime(iso) });
}

function refreshRelativeTimes() {
  for (const el of document.querySelectorAll('time[data-relative]')) {
    el.textContent = relativeTime(el.getAttribute('datetime'));
  }
}

const repoText = (gitUrl) => gitUrl || 'uploaded folder';

// ---------------------------------------------------------------------------------------------
// Messages: #flash for failed actions, #notice for what went well

function showFlash(message) {
  const flash = $('flash');
  flash.textContent = message;
  flash.hidden = !message;
}

function showNotice(message) {
  $('notice').textContent = message;
}

function clearMessages() {
  showFlash('');
  showNotice('');
}

/** A message for the page about to be shown: navigating clears #flash, then shows this. */
let pendingFlash = '';
/** The same for #notice: news that is not a problem. */
let pendingNotice = '';

/** Report a failed action in #flash (a 401 has already signed out: nothing to add). */
function reportError(err) {
  if (err && err.status === 401) return;
  showFlash(err && err.message ? err.message : String(err));
}

/** Run an action from a button: disabled while in flight, errors to `report` (#flash by
 * default). True if it worked. */
async function withButton(button, action, report = reportError) {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  showFlash('');
  showNotice('');
  try {
    await action();
    return true;
  } catch (err) {
    report(err);
    return false;
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    refocus(button);
  }
}

/** A disabled button loses focus to <body>: give it back, or to the heading if it is now hidden. */
function refocus(button) {
  if (document.activeElement !== document.body || !button.isConnected) return;
  const view = button.closest('.view');
  const target = button.closest('[hidden]') ? view && view.querySelector('h1') : button;
  if (target) target.focus();
}

/** Re-render `container` without losing keyboard focus: the focused control is found again by
 * its row (`data-project` / `data-deployment`) and its first class. */
function keepingFocus(container, render) {
  const rowKey = (row) => row.dataset.project ?? row.dataset.deployment;
  const active = document.activeElement;
  const row = active && container.contains(active) ? active.closest('[data-project],[data-deployment]') : null;
  const key = row && rowKey(row);
  const cls = active && active.classList[0];
  render();
  if (!key || !cls) return;
  const again = [...container.querySelectorAll('[data-project],[data-deployment]')].find((r) => rowKey(r) === key);
  const target = again && again.querySelector(`.${CSS.escape(cls)}`);
  if (target) target.focus();
}

// ---------------------------------------------------------------------------------------------
// Views and routing

/** The view on screen: its timers and socket go away with it, and late answers are dropped. */
let current = null;

function startView() {
  if (current) current.stop();
  const timers = new Map();
  const ctx = {
    alive: true,
    socket: null,
    /** Start a named timer, one-shot or repeating, replacing the one of that name. */
    timer(name, fn, ms, repeat = false) {
      ctx.cancel(name);
      timers.set(name, repeat ? setInterval(fn, ms) : setTimeout(fn, ms));
    },
    // clearTimeout clears intervals too: both live in one list (HTML spec).
    cancel(name) {
      clearTimeout(timers.get(name));
      timers.delete(name);
    },
    stop() {
      ctx.alive = false;
      for (const name of [...timers.keys()]) ctx.cancel(name);
      closeSocket(ctx);
    },
  };
  current = ctx;
  return ctx;
}

function showView(id, title) {
  for (const view of document.querySelectorAll('.view')) view.hidden = view.id !== id;
  document.title = title ? `${title} · Scale Mesh` : 'Scale Mesh';
  $('session').hidden = id === 'view-signin';
  if (id === 'view-tokens') $('nav-tokens').setAttribute('aria-current', 'page');
  else $('nav-tokens').removeAttribute('aria-current');
}

/** Move focus to the new view's heading, so keyboard and screen-reader users start there. */
function focusHeading(viewId) {
  const heading = document.querySelector(`#${viewId} h1`);
  if (heading) heading.focus({ preventScroll: true });
}

/** A name or id from the address. Never `.` or `..` (nor `%2e%2e`, which decodes to it): in a
 * request path those climb out of `/projects/{name}`, and a link could aim the page's buttons
 * at another API path. Throws for them and for a malformed %-escape. */
function routeSegment(raw) {
  const value = decodeURIComponent(raw);
  if (value === '.' || value === '..') throw new URIError('a dot segment');
  return value;
}

/** A name typed in a form or taken from an answer, as one segment of a request path:
 * %-encoded, and never empty, `.` or `..` (which `fetch` would resolve into another path). */
function pathPart(value) {
  const text = String(value ?? '');
  if (text === '' || text === '.' || text === '..') {
    throw new ApiError(400, 'invalid_name', `“${text}” cannot be used as a name.`);
  }
  return enc(text);
}

function parseRoute() {
  const hash = location.hash.replace(/^#/, '') || '/';
  try {
    let m;
    if (hash === '/') return { view: 'projects' };
    if (/^\/tokens\/?$/.test(hash)) return { view: 'tokens' };
    if ((m = hash.match(/^\/projects\/([^/]+)\/?$/))) return { view: 'project', name: routeSegment(m[1]) };
    if ((m = hash.match(/^\/deployments\/([^/]+)\/?$/))) return { view: 'deployment', id: routeSegment(m[1]) };
  } catch {
    // A malformed %-escape or a dot segment: treat as unknown.
  }
  return null;
}

function route(moveFocus = false) {
  clearMessages();
  showFlash(pendingFlash);
  showNotice(pendingNotice);
  pendingFlash = '';
  pendingNotice = '';
  forgetNewSecret();
  if (!getToken()) {
    showSignin('');
    return;
  }
  if (!me) loadMe();
  const r = parseRoute();
  if (!r) {
    location.replace('#/');
    return;
  }
  const ctx = startView();
  if (r.view === 'projects') loadProjects(ctx, true);
  else if (r.view === 'project') loadProject(ctx, r.name, true);
  else if (r.view === 'tokens') loadTokens(ctx, true);
  else loadDeployment(ctx, r.id);
  if (moveFocus) focusHeading(`view-${r.view}`);
}

// ---------------------------------------------------------------------------------------------
// Sign in and out

function showSignin(message) {
  if (current) current.stop();
  current = null;
  showView('view-signin', 'Sign in');
  $('signin-error').textContent = message || '';
  $('token').setAttribute('aria-invalid', message ? 'true' : 'false');
  $('token').focus();
}

/** Forget the token and go back to the sign-in screen, showing why. */
function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  setMe(null);
  forgetNewSecret();
  clearMessages();
  showSignin(message);
}

/** Who this tab's token belongs to (`GET /me`), shown in the top bar; null when signed out. */
let me = null;
let meLoading = null;

function setMe(answer) {
  me = answer;
  $('whoami').hidden = !me;
  $('me-name').textContent = me ? me.user.name : '';
  $('me-admin').hidden = !(me && me.user.admin);
  if (!me) {
    $('whoami').removeAttribute('title');
    return;
  }
  const t = me.token;
  const scope = t.projects ? `, for ${t.projects.join(', ')}` : '';
  $('whoami').title = `Signed in as ${me.user.name} with the ${t.role} token “${t.name}”${scope}`;
}

/** Ask who the token belongs to, once at a time; an expired or revoked token signs out (401). */
function loadMe() {
  if (meLoading) return meLoading;
  const token = getToken();
  meLoading = api('GET', '/me')
    .then((answer) => {
      if (getToken() === token) setMe(answer);
    }, (err) => {
      if (getToken() === token) reportError(err);
    })
    .finally(() => {
      meLoading = null;
    });
  return meLoading;
}

async function onSignin(event) {
  event.preventDefault();
  const input = $('token');
  const value = input.value.trim();
  if (!value) {
    showSignin('Paste an API token to sign in.');
    return;
  }
  if (!/^[\x21-\x7e]+$/.test(value)) {
    showSignin('That is not an API token: a token is one word of letters, digits and punctuation, like smk_…');
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, value);
  const button = $('signin-submit');
  button.disabled = true;
  try {
    setMe(await api('GET', '/me'));
  } catch (err) {
    // A 401 has signed out already, with the API's message; anything else is shown the same way.
    if (err.status !== 401) signOut(err.message);
    return;
  } finally {
    button.disabled = false;
  }
  input.value = '';
  $('signin-error').textContent = '';
  if (location.hash === '#/') route(true);
  else location.hash = '#/';
}

// ---------------------------------------------------------------------------------------------
// Projects list (#/)

async function loadProjects(ctx, first) {
  if (first) showView('view-projects', 'Projects');
  const section = $('projects');
  if (first) {
    $('projects-list').replaceChildren();
    $('projects-empty').hidden = true;
    $('projects-loading').hidden = false;
    section.setAttribute('aria-busy', 'true');
  }
  const load = (ctx.loads = (ctx.loads || 0) + 1);
  try {
    const { projects } = await api('GET', '/projects');
    // The newest deployment of each project, all at once; one failing only blanks its card.
    const newest = await Promise.all(projects.map((p) =>
      api('GET', `/projects/${enc(p.name)}/deployments?limit=1`)
        .then((r) => r.deployments[0] || null, () => null)));
    if (!ctx.alive || load !== ctx.loads) return;
    const list = $('projects-list');
    keepingFocus(list, () => list.replaceChildren(...projects.map((p, i) => projectCard(p, newest[i]))));
    $('projects-empty').hidden = projects.length > 0;
    // Keep the statuses moving while something builds.
    if (newest.some((d) => d && RUNNING.has(d.status))) ctx.timer('refresh', () => loadProjects(ctx, false), REFRESH_MS);
  } catch (err) {
    if (ctx.alive) reportError(err);
  } finally {
    if (ctx.alive) {
      $('projects-loading').hidden = true;
      section.setAttribute('aria-busy', 'false');
    }
  }
}

function projectCard(project, newest) {
  const live = project.production_deployment;
  const fact = (label, value, cls = '') =>
    h('div', { class: `fact ${cls}`.trim() }, h('dt', { text: label }), h('dd', {}, value));
  return h('li', { class: 'card project', 'data-project': project.name },
    h('div', { class: 'project-head' },
      h('h2', { class: 'project-title' },
        h('a', { class: 'project-link', href: `#/projects/${enc(project.name)}`, text: project.name })),
      newest ? statusBadge(newest.status)
        : h('span', { class: 'status', 'data-status': 'none', text: 'not deployed' })),
    h('dl', { class: 'facts' },
      fact('Production', externalLink(project.url, 'production-url'), 'fact-url'),
      fact('Repository', setBreakable(h('span', { class: 'repo' }), repoText(project.git_url)), 'fact-url'),
      fact('Live', live
        ? h('a', { class: 'live-deployment', href: `#/deployments/${enc(live)}` }, h('code', { text: live }))
        : h('span', { class: 'muted', text: 'nothing live yet' })),
      fact('Last deploy', timeEl(newest && newest.created_at))));
}

/** Which form field an API error is about. */
const FIELD_INPUTS = {
  name: 'np-name',
  git_url: 'np-git-url',
  git_ref: 'np-branch',
  'build.rootDirectory': 'np-root',
  'build.buildCommand': 'np-build',
  'build.installCommand': 'np-build',
  'build.outputDirectory': 'np-output',
};
const NP_INPUTS = ['np-git-url', 'np-name', 'np-branch', 'np-root', 'np-build', 'np-output'];

function setFieldError(inputId, message) {
  const input = $(inputId);
  $(`${inputId}-error`).textContent = message;
  input.setAttribute('aria-invalid', message ? 'true' : 'false');
}

function clearNewProjectErrors() {
  for (const id of NP_INPUTS) setFieldError(id, '');
  $('np-error').textContent = '';
}

/** Show an API error next to each field it names (focusing the first), or as the form's general error. */
function showNewProjectError(err) {
  if (err.status === 401) return;
  const all = err.errors.length > 0 ? err.errors : [err];
  let first = null;
  const general = [];
  for (const e of all) {
    const inputId = FIELD_INPUTS[e.field] || (!e.field && e.code === 'name_taken' ? 'np-name' : null);
    if (inputId) {
      // Two settings share one input (install and build command): show both.
      const shown = $(`${inputId}-error`).textContent;
      setFieldError(inputId, shown ? `${shown} ${e.message}` : e.message);
      first = first || inputId;
    } else {
      general.push(e.message);
    }
  }
  $('np-error').textContent = general.join(' ');
  if (first) $(first).focus();
}

/** The create request: only the fields filled in, trimmed; `build` only when one is set. */
function newProjectBody() {
  const value = (id) => $(id).value.trim();
  const body = {};
  if (value('np-git-url')) body.git_url = value('np-git-url');
  if (value('np-name')) body.name = value('np-name');
  if (value('np-branch')) body.git_ref = value('np-branch');
  const build = {};
  if (value('np-root')) build.rootDirectory = value('np-root');
  if (value('np-build')) build.buildCommand = value('np-build');
  if (value('np-output')) build.outputDirectory = value('np-output');
  if (Object.keys(build).length > 0) body.build = build;
  return body;
}

async function onNewProject(event) {
  event.preventDefault();
  clearNewProjectErrors();
  showFlash('');
  const body = newProjectBody();
  if (!body.git_url) {
    setFieldError('np-git-url', 'Enter the URL of a Git repository, like https://github.com/you/site.git.');
    $('np-git-url').focus();
    return;
  }
  const button = $('np-submit');
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    let project;
    try {
      project = await api('POST', '/projects', body);
    } catch (err) {
      showNewProjectError(err);
      return;
    }
    let deployment;
    try {
      deployment = await api('POST', `/projects/${enc(project.name)}/deployments`, {});
    } catch (err) {
      // The project exists now: show it, with why its first build did not start.
      $('new-project-form').reset();
      if (err.status === 401) return;
      pendingFlash = `Project ${project.name} was created, but its first build did not start: ${err.message}`;
      location.hash = `#/projects/${enc(project.name)}`;
      return;
    }
    $('new-project-form').reset();
    location.hash = `#/deployments/${enc(deployment.id)}`;
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    refocus(button);
  }
}

// ---------------------------------------------------------------------------------------------
// Project page (#/projects/<name>)

async function loadProject(ctx, name, first) {
  if (first) {
    showView('view-project', name);
    $('project-name').textContent = name;
    $('deploy').dataset.project = name;
    $('rollback').dataset.project = name;
    for (const id of ['production-link', 'project-repo', 'project-branch']) $(id).textContent = '';
    $('folder-hint').hidden = true;
    $('deploy').hidden = false;
    $('production-link').removeAttribute('href');
    $('history-body').replaceChildren();
    $('history-empty').hidden = true;
    resetSettings();
  }
  // Refreshes may overlap (a timer and a button): only the newest one draws.
  const load = (ctx.loads = (ctx.loads || 0) + 1);
  try {
    const [project, { deployments }] = await Promise.all([
      api('GET', `/projects/${enc(name)}`),
      api('GET', `/projects/${enc(name)}/deployments?limit=50`),
    ]);
    if (!ctx.alive || load !== ctx.loads) return;
    renderProject(project, deployments, ctx);
    // Variables and members: loaded with the first answer, and again when the caller's role
    // changed (it decides which forms and buttons the page offers).
    const role = project.role || 'viewer';
    if (!ctx.settings || ctx.settings.role !== role) loadSettings(ctx, project.name, role);
    if (deployments.some((d) => RUNNING.has(d.status))) {
      ctx.timer('refresh', () => loadProject(ctx, name, false), REFRESH_MS);
    }
  } catch (err) {
    if (!ctx.alive) return;
    reportError(err);
    // A passing network failure should not stop the refresh of a page with builds running.
    if (err.status === 0) ctx.timer('refresh', () => loadProject(ctx, name, false), REFRESH_MS);
  }
}

function renderProject(project, deployments, ctx) {
  $('project-name').textContent = project.name;
  setLink($('production-link'), project.url);
  setBreakable($('project-repo'), repoText(project.git_url));
  // A project deployed from a folder is deployed again from that folder, with the CLI: the page
  // has no source to build, and no branch to show.
  const fromFolder = !project.git_url;
  $('project-branch').textContent = project.git_ref || 'default branch';
  $('project-branch-fact').hidden = fromFolder;
  $('deploy').hidden = fromFolder;
  $('folder-hint').hidden = !fromFolder;
  $('history-empty').textContent = fromFolder
    ? 'No deployments yet. Run “scalemesh deploy” in the project’s folder.'
    : 'No deployments yet. Press “Deploy now” to build the repository.';
  const body = $('history-body');
  keepingFocus(body, () => body.replaceChildren(...deployments.map((d) => historyRow(d, ctx))));
  $('history-empty').hidden = deployments.length > 0;
}

/** The commit a deployment was built from: its short name and message, the rest on hover. */
function commitCell(commit) {
  if (!commit) return h('span', { class: 'muted', text: '—' });
  const on = commit.branch ? ` on ${commit.branch}` : '';
  return h('span', { class: 'commit', title: `${commit.sha}${on}, by ${commit.author}` },
    h('code', { text: commit.sha.slice(0, 7) }), ' ', commit.message);
}

function historyRow(d, ctx) {
  const running = RUNNING.has(d.status);
  const linkId = `dl-${d.id}`;
  const duration = d.finished_at
    ? formatDuration(Date.parse(d.finished_at) - Date.parse(d.created_at))
    : running ? `running, ${formatDuration(Date.now() - Date.parse(d.created_at))}` : '—';
  const actions = h('td', { class: 'actions-cell' });
  if (d.status === 'ready' && !d.production) {
    actions.append(h('button', { type: 'button', class: 'promote btn btn-small', 'aria-describedby': linkId,
      text: 'Promote' }));
  }
  if (running) {
    actions.append(h('button', { type: 'button', class: 'cancel btn btn-small btn-danger', 'aria-describedby': linkId,
      text: 'Cancel' }));
  }
  const row = h('tr', { 'data-deployment': d.id },
    h('td', { 'data-label': 'Deployment' },
      h('a', { class: 'deployment-link', id: linkId, href: `#/deployments/${enc(d.id)}` }, h('code', { text: d.id }))),
    h('td', { 'data-label': 'Status' }, h('span', { class: 'badges' }, statusBadge(d.status),
      d.production ? h('span', { class: 'live', text: 'Live' }) : null)),
    h('td', { 'data-label': 'Commit' }, commitCell(d.commit)),
    h('td', { 'data-label': 'Preview' }, externalLink(d.url, 'preview-url')),
    h('td', { 'data-label': 'Duration', class: 'duration', text: duration }),
    h('td', { 'data-label': 'Created' }, timeEl(d.created_at)),
    actions);
  row.addEventListener('click', (event) => onHistoryClick(event, d, ctx));
  return row;
}

async function onHistoryClick(event, d, ctx) {
  const button = event.target.closest('button');
  if (!button) return;
  const name = d.project;
  if (button.classList.contains('promote')) {
    await withButton(button, async () => {
      await api('POST', `/deployments/${enc(d.id)}/promote`);
      showNotice(`Deployment ${d.id} is live in production.`);
    });
  } else if (button.classList.contains('cancel')) {
    await withButton(button, async () => {
      await api('POST', `/deployments/${enc(d.id)}/cancel`);
      showNotice(`Deployment ${d.id} was canceled.`);
    });
  } else {
    return;
  }
  if (!ctx.alive) return;
  await loadProject(ctx, name, false);
  // The button may be gone (a promoted deployment has none): keep focus in its row.
  if (!document.activeElement || document.activeElement === document.body) {
    const row = [...$('history-body').rows].find((r) => r.dataset.deployment === d.id);
    const link = row && row.querySelector('.deployment-link');
    if (link) link.focus();
  }
}

async function onDeploy() {
  const name = $('deploy').dataset.project;
  await withButton($('deploy'), async () => {
    const d = await api('POST', `/projects/${enc(name)}/deployments`, {});
    location.hash = `#/deployments/${enc(d.id)}`;
  });
}

async function onRollback() {
  const name = $('rollback').dataset.project;
  const ctx = current;
  const ok = await withButton($('rollback'), async () => {
    const d = await api('POST', `/projects/${enc(name)}/rollback`, {});
    showNotice(`Rolled back: deployment ${d.id} is live in production.`);
  });
  if (ok && ctx && ctx.alive) await loadProject(ctx, name, false);
}

// ---------------------------------------------------------------------------------------------
// Project settings (on the project page): environment variables and members. The page offers
// the forms and buttons the caller's role can use; the API decides in the end, and its refusals
// (403, naming the role needed) are shown next to the form.

const ROLE_RANK = { viewer: 0, developer: 1, owner: 2 };
const atLeast = (role, needed) => (ROLE_RANK[role] ?? 0) >= ROLE_RANK[needed];
/** Preview values take a developer; production values (and both at once) an owner. */
const mayWriteEnv = (role, target) => atLeast(role, target === 'preview' ? 'developer' : 'owner');
const TARGET_TEXT = { all: 'production and preview', production: 'production', preview: 'preview' };

/** A table cell with the label narrow screens show beside it. */
const cell = (label, ...children) => h('td', { 'data-label': label }, ...children);

/** A message for a settings section: 401 has signed out already. */
const sectionError = (id) => (err) => {
  if (err && err.status !== 401) $(id).textContent = err.message || String(err);
};

/** After a row's button went away with its row: focus the same kind of button in the row now
 * at that place, else `fallback`. */
function focusRowAt(tbody, index, cls, fallback) {
  if (document.activeElement && document.activeElement !== document.body) return;
  const rows = [...tbody.rows];
  const row = rows[Math.min(index, rows.length - 1)];
  const target = row && row.querySelector(`.${cls}`);
  (target || fallback).focus();
}

function resetSettings() {
  for (const id of ['env-body', 'members-body']) $(id).replaceChildren();
  for (const id of ['env-wrap', 'env-empty', 'env-form', 'members-wrap', 'member-form', 'danger']) $(id).hidden = true;
  for (const id of ['env-error', 'members-error']) $(id).textContent = '';
  $('env-form').reset();
  $('member-form').reset();
  showSecretInput(false);
  clearEnvErrors();
  clearMemberErrors();
}

function loadSettings(ctx, name, role) {
  const firstTime = !ctx.settings;
  ctx.settings = { name, role };
  $('env-form').hidden = !atLeast(role, 'developer');
  $('member-form').hidden = !atLeast(role, 'owner');
  showDanger(name, atLeast(role, 'owner'));
  // A developer sets preview values only: start there.
  if (firstTime) $('env-target').value = atLeast(role, 'owner') ? 'all' : 'preview';
  loadEnv(ctx);
  loadMembers(ctx);
}

// ---- Deleting the project: owners only, after typing its name.

function showDanger(name, owner) {
  $('danger').hidden = !owner;
  $('delete-name').textContent = name;
  $('delete-confirm').value = '';
  $('delete-error').textContent = '';
  $('delete-submit').disabled = true;
}

async function onDeleteProject(event) {
  event.preventDefault();
  const ctx = current;
  const name = ctx && ctx.settings && ctx.settings.name;
  if (!name || $('delete-confirm').value.trim() !== name) return;
  $('delete-error').textContent = '';
  const ok = await withButton($('delete-submit'), () => api('DELETE', `/projects/${enc(name)}`),
    sectionError('delete-error'));
  if (!ok) return;
  pendingNotice = `Project ${name} was deleted.`;
  location.hash = '#/';
}

// ---- Environment variables

async function loadEnv(ctx) {
  const load = (ctx.envLoads = (ctx.envLoads || 0) + 1);
  $('env-loading').hidden = $('env-body').rows.length > 0;
  try {
    const { env } = await api('GET', `/projects/${pathPart(ctx.settings.name)}/env`);
    if (!ctx.alive || load !== ctx.envLoads) return;
    $('env-error').textContent = '';
    const body = $('env-body');
    body.replaceChildren(...env.map((v) => envRow(ctx, v)));
    $('env-wrap').hidden = env.length === 0;
    $('env-empty').hidden = env.length > 0;
  } catch (err) {
    if (ctx.alive) sectionError('env-error')(err);
  } finally {
    if (ctx.alive) $('env-loading').hidden = true;
  }
}

function envValue(v) {
  if (v.sensitive) return h('span', { class: 'muted', text: 'hidden' });
  if (typeof v.value === 'string') {
    return v.value === '' ? h('span', { class: 'muted', text: 'empty' }) : h('code', { class: 'env-value', text: v.value });
  }
  const needed = v.target === 'preview' ? 'developer' : 'owner';
  return h('span', { class: 'muted', title: `Reading ${v.target} values needs the ${needed} role` },
    h('span', { 'aria-hidden': 'true', text: '—' }), h('span', { class: 'vh', text: `needs the ${needed} role` }));
}

function envRow(ctx, v) {
  const actions = h('td', { class: 'actions-cell' });
  if (mayWriteEnv(ctx.settings.role, v.target)) {
    const button = h('button', { type: 'button', class: 'env-remove btn btn-small btn-danger',
      'aria-label': `Remove ${v.key} from ${v.target}`, text: 'Remove' });
    button.addEventListener('click', () => onEnvRemove(ctx, v, button));
    actions.append(button);
  }
  return h('tr', { 'data-env': `${v.target}/${v.key}` },
    cell('Key', h('code', { class: 'env-key', text: v.key })),
    cell('Target', h('span', { class: 'tag', 'data-target': v.target, text: v.target })),
    cell('Sensitive', v.sensitive ? h('span', { class: 'tag tag-sensitive', text: 'sensitive' })
      : h('span', { class: 'muted', text: 'no' })),
    cell('Value', envValue(v)),
    cell('Updated', timeEl(v.updated_at), h('span', { class: 'muted', text: ` by ${v.updated_by || 'a removed user'}` })),
    actions);
}

async function onEnvRemove(ctx, v, button) {
  const index = button.closest('tr').sectionRowIndex;
  $('env-error').textContent = '';
  const ok = await withButton(button, async () => {
    await api('DELETE', `/projects/${pathPart(ctx.settings.name)}/env/${pathPart(v.key)}?target=${enc(v.target)}`);
    showNotice(`${v.key} was removed from ${v.target}.`);
  }, sectionError('env-error'));
  if (!ok || !ctx.alive) return;
  await loadEnv(ctx);
  focusRowAt($('env-body'), index, 'env-remove', $('env-title'));
}

/** A sensitive value is typed in a password field, anything else in a text area. */
function showSecretInput(sensitive) {
  const [from, to] = sensitive ? ['env-value', 'env-secret'] : ['env-secret', 'env-value'];
  if ($(from).value) $(to).value = $(from).value;
  $(from).value = '';
  $('env-value-field').hidden = sensitive;
  $('env-secret-field').hidden = !sensitive;
}

function clearEnvErrors() {
  setFieldError('env-key', '');
  $('env-value-error').textContent = '';
  $('env-form-error').textContent = '';
}

async function onEnvSubmit(event) {
  event.preventDefault();
  const ctx = current;
  if (!ctx || !ctx.settings) return;
  clearEnvErrors();
  const key = $('env-key').value.trim();
  const sensitive = $('env-sensitive').checked;
  const value = $(sensitive ? 'env-secret' : 'env-value').value;
  const target = $('env-target').value;
  if (!key) {
    setFieldError('env-key', 'Enter the variable’s name, like API_URL.');
    $('env-key').focus();
    return;
  }
  const ok = await withButton($('env-submit'), async () => {
    await api('PUT', `/projects/${pathPart(ctx.settings.name)}/env/${pathPart(key)}`, { value, target, sensitive });
  }, (err) => {
    if (err.status === 401) return;
    if (err.code === 'invalid_name' || (err.code === 'invalid_env' && err.message.includes('variable name'))) {
      setFieldError('env-key', err.message);
      $('env-key').focus();
    } else if (err.code === 'invalid_env' && err.message.startsWith('the value of')) {
      $('env-value-error').textContent = err.message;
      $(sensitive ? 'env-secret' : 'env-value').focus();
    } else {
      $('env-form-error').textContent = err.message;
    }
  });
  if (!ok || !ctx.alive) return;
  // The value leaves the page with the form; the target stays for the next one.
  $('env-form').reset();
  $('env-target').value = target;
  showSecretInput(false);
  showNotice(`${key} was saved for ${TARGET_TEXT[target] || target}.`);
  await loadEnv(ctx);
}

// ---- Members

async function loadMembers(ctx) {
  const load = (ctx.memberLoads = (ctx.memberLoads || 0) + 1);
  $('members-loading').hidden = $('members-body').rows.length > 0;
  try {
    // Who "you" are marks a row: wait for it when the page was opened here.
    const [{ members }] = await Promise.all([
      api('GET', `/projects/${pathPart(ctx.settings.name)}/members`), me ? null : loadMe()]);
    if (!ctx.alive || load !== ctx.memberLoads) return;
    $('members-error').textContent = '';
    $('members-body').replaceChildren(...members.map((m) => memberRow(ctx, m)));
    $('members-wrap').hidden = members.length === 0;
  } catch (err) {
    if (ctx.alive) sectionError('members-error')(err);
  } finally {
    if (ctx.alive) $('members-loading').hidden = true;
  }
}

function memberRow(ctx, m) {
  const actions = h('td', { class: 'actions-cell' });
  if (atLeast(ctx.settings.role, 'owner')) {
    const button = h('button', { type: 'button', class: 'member-remove btn btn-small btn-danger',
      'aria-label': `Remove ${m.user} from ${ctx.settings.name}`, text: 'Remove' });
    button.addEventListener('click', () => onMemberRemove(ctx, m, button));
    actions.append(button);
  }
  const you = me && me.user.name === m.user;
  return h('tr', { 'data-member': m.user },
    cell('User', h('span', { class: 'member-name', text: m.user }), you ? h('span', { class: 'tag', text: 'you' }) : null),
    cell('Role', h('span', { class: 'member-role', text: m.role })),
    cell('Added', timeEl(m.created_at)),
    actions);
}

/** After a change to the members: theirs again, and the project's (the caller's own role may
 * have changed with it). */
async function afterMemberChange(ctx, user) {
  if (!ctx.alive) return;
  if (me && me.user.name === user) await loadProject(ctx, ctx.settings.name, false);
  await loadMembers(ctx);
}

async function onMemberRemove(ctx, m, button) {
  const index = button.closest('tr').sectionRowIndex;
  $('members-error').textContent = '';
  const ok = await withButton(button, async () => {
    await api('DELETE', `/projects/${pathPart(ctx.settings.name)}/members/${pathPart(m.user)}`);
    showNotice(`${m.user} is no longer a member of ${ctx.settings.name}.`);
  }, sectionError('members-error'));
  if (!ok) return;
  await afterMemberChange(ctx, m.user);
  focusRowAt($('members-body'), index, 'member-remove', $('members-title'));
}

function clearMemberErrors() {
  setFieldError('member-user', '');
  $('member-form-error').textContent = '';
}

async function onMemberSubmit(event) {
  event.preventDefault();
  const ctx = current;
  if (!ctx || !ctx.settings) return;
  clearMemberErrors();
  const user = $('member-user').value.trim();
  const role = $('member-role').value;
  if (!user) {
    setFieldError('member-user', 'Enter the user name of someone with an account on this server.');
    $('member-user').focus();
    return;
  }
  const ok = await withButton($('member-submit'), async () => {
    await api('POST', `/projects/${pathPart(ctx.settings.name)}/members`, { user, role });
  }, (err) => {
    if (err.status === 401) return;
    if (err.status === 404 && /user/.test(err.message)) {
      setFieldError('member-user', err.message);
      $('member-user').focus();
    } else {
      $('member-form-error').textContent = err.message;
    }
  });
  if (!ok) return;
  $('member-user').value = '';
  showNotice(`${user} is now ${role === 'owner' ? 'an' : 'a'} ${role} of ${ctx.settings.name}.`);
  await afterMemberChange(ctx, user);
}

// ---------------------------------------------------------------------------------------------
// The signed-in user's tokens (#/tokens)

async function loadTokens(ctx, first) {
  if (first) {
    showView('view-tokens', 'API tokens');
    $('tokens-body').replaceChildren();
    for (const id of ['tokens-wrap', 'tokens-empty', 'tokens-denied', 'token-form']) $(id).hidden = true;
    $('tokens-loading').hidden = false;
  }
  const load = (ctx.loads = (ctx.loads || 0) + 1);
  try {
    // The token this tab uses is marked: wait for it when the page was opened here.
    const [{ tokens }] = await Promise.all([api('GET', '/tokens'), me ? null : loadMe()]);
    if (!ctx.alive || load !== ctx.loads) return;
    $('tokens-body').replaceChildren(...tokens.map((t) => tokenRow(ctx, t)));
    $('tokens-wrap').hidden = tokens.length === 0;
    $('tokens-empty').hidden = tokens.length > 0;
    $('token-form').hidden = false;
  } catch (err) {
    if (!ctx.alive || err.status === 401) return;
    if (err.status === 403) {
      // A token that is not `full`, or limited to some projects, cannot manage tokens.
      $('tokens-denied').textContent = `${err.message}. Sign in with a full token to see and make tokens.`;
      $('tokens-denied').hidden = false;
    } else {
      reportError(err);
    }
  } finally {
    if (ctx.alive) $('tokens-loading').hidden = true;
  }
}

function tokenRow(ctx, t) {
  const revoke = h('button', { type: 'button', class: 'token-revoke btn btn-small btn-danger',
    'aria-label': `Revoke token ${t.name}`, text: 'Revoke' });
  revoke.addEventListener('click', () => onRevoke(ctx, t, revoke));
  const expired = t.expires_at && Date.parse(t.expires_at) <= Date.now();
  return h('tr', { 'data-token': t.id },
    cell('Name', h('span', { class: 'token-name', text: t.name }),
      me && me.token.id === t.id ? h('span', { class: 'tag', title: 'The token this tab is signed in with', text: 'this tab' }) : null),
    h('td', { 'data-label': 'Prefix', class: 'nowrap' }, h('code', { class: 'token-prefix', text: `${t.prefix}…` })),
    h('td', { 'data-label': 'Role', class: 'nowrap' }, h('span', { class: 'token-role', text: t.role })),
    cell('Projects', t.projects ? h('span', { class: 'token-projects', text: t.projects.join(', ') })
      : h('span', { class: 'token-projects muted', text: 'all' })),
    cell('Created', timeEl(t.created_at)),
    cell('Last used', timeEl(t.last_used_at)),
    cell('Expires', expired ? h('span', { class: 'tag tag-expired', text: 'expired' }) : null, timeEl(t.expires_at)),
    h('td', { class: 'actions-cell' }, revoke));
}

async function onRevoke(ctx, t, button) {
  const index = button.closest('tr').sectionRowIndex;
  const ok = await withButton(button, async () => {
    await api('DELETE', `/tokens/${pathPart(t.id)}`);
    showNotice(`Token “${t.name}” was revoked: it no longer works anywhere.`);
  });
  if (!ok || !ctx.alive) return;
  await loadTokens(ctx, false);
  if (ctx.alive) focusRowAt($('tokens-body'), index, 'token-revoke', $('tokens-title'));
}

/** Which form field an API error about a new token is about. */
const TOKEN_FIELDS = { name: 'tk-name', projects: 'tk-projects', expires: 'tk-expires' };

function clearTokenErrors() {
  for (const id of Object.values(TOKEN_FIELDS)) setFieldError(id, '');
  $('tk-error').textContent = '';
}

/** The create request: `projects` only when some are named. */
function newTokenBody() {
  const body = { name: $('tk-name').value.trim(), role: $('tk-role').value, expires: $('tk-expires').value };
  const projects = $('tk-projects').value.split(',').map((p) => p.trim()).filter(Boolean);
  if (projects.length > 0) body.projects = projects;
  return body;
}

async function onNewToken(event) {
  event.preventDefault();
  const ctx = current;
  if (!ctx) return;
  clearTokenErrors();
  forgetNewSecret();
  const body = newTokenBody();
  if (!body.name) {
    setFieldError('tk-name', 'Give the token a name, to tell it apart later (e.g. ci or laptop).');
    $('tk-name').focus();
    return;
  }
  let created = null;
  const ok = await withButton($('tk-submit'), async () => {
    created = await api('POST', '/tokens', body);
  }, (err) => {
    if (err.status === 401) return;
    const inputId = TOKEN_FIELDS[err.field]
      || (!err.field && err.status === 404 && body.projects ? 'tk-projects' : null);
    if (inputId) {
      setFieldError(inputId, err.message);
      $(inputId).focus();
    } else {
      $('tk-error').textContent = err.message;
    }
  });
  if (!ok || !ctx.alive) return;
  $('token-form').reset();
  showNewSecret(created);
  await loadTokens(ctx, false);
}

/** The new token's secret, in a read-only field, until the page is left or "Done". */
function showNewSecret(created) {
  $('token-secret-label').textContent = `Token “${created.token.name}”`;
  $('token-secret').value = created.secret;
  $('token-copied').textContent = '';
  $('token-created').hidden = false;
  $('token-secret').focus();
  $('token-secret').select();
}

function forgetNewSecret() {
  $('token-secret').value = '';
  $('token-copied').textContent = '';
  $('token-created').hidden = true;
}

async function onCopySecret() {
  const input = $('token-secret');
  let copied = false;
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(input.value);
      copied = true;
    }
  } catch {
    // Refused (no permission, or the page lost focus): select it for the keyboard below.
  }
  if (!copied) {
    input.focus();
    input.select();
    try {
      copied = document.execCommand('copy');
    } catch {
      copied = false;
    }
  }
  $('token-copied').textContent = copied
    ? 'Copied to the clipboard.'
    : 'The token is selected: copy it with Ctrl+C (⌘C on a Mac).';
}

function onSecretDone() {
  forgetNewSecret();
  $('tokens-title').focus();
}

// ---------------------------------------------------------------------------------------------
// Deployment page (#/deployments/<id>)

async function loadDeployment(ctx, id) {
  showView('view-deployment', `Deployment ${id}`);
  Object.assign(ctx, { dep: null, lastSeq: 0, ended: false, retry: 0, follow: true, pending: [], drawing: false });
  resetDeploymentView(id);
  try {
    const dep = await api('GET', `/deployments/${enc(id)}`);
    if (!ctx.alive) return;
    applyDeployment(ctx, dep);
    openStream(ctx);
  } catch (err) {
    if (ctx.alive) reportError(err);
  }
}

function resetDeploymentView(id) {
  $('deployment-id').textContent = id;
  $('project-link').textContent = '';
  $('project-link').setAttribute('href', '#/');
  for (const el of ['deployment-phase', 'deployment-elapsed', 'deployment-source']) $(el).textContent = '';
  $('deployment-status').textContent = '';
  delete $('deployment-status').dataset.status;
  for (const el of ['deployment-live', 'deployment-reason', 'deployment-progress-row', 'deployment-production-row',
    'deployment-production-url', 'cancel', 'log-connection', 'log-follow', 'log-truncated']) $(el).hidden = true;
  setLink($('deployment-url'), '');
  $('log').replaceChildren();
}

/** Take a whole deployment from the API, then redraw. */
function applyDeployment(ctx, dep) {
  ctx.dep = dep;
  $('project-link').textContent = dep.project;
  $('project-link').setAttribute('href', `#/projects/${enc(dep.project)}`);
  const src = dep.source || {};
  setBreakable($('deployment-source'), src.kind === 'git'
    ? `${src.url}${src.git_ref ? ` @ ${src.git_ref}` : ''}`
    : src.kind === 'prebuilt' ? 'prebuilt folder (no build)' : 'uploaded source');
  setLink($('deployment-url'), dep.url);
  setLink($('deployment-production-url'), dep.project_url);
  renderDeploymentState(ctx);
}

/** Redraw what changes while a build runs: status, phase, progress, timers, buttons. */
function renderDeploymentState(ctx) {
  const d = ctx.dep;
  const running = RUNNING.has(d.status);
  setStatus($('deployment-status'), d.status);
  $('deployment-phase').textContent = d.phase;
  document.title = `${d.status} · Deployment ${d.id} · Scale Mesh`;
  $('deployment-live').hidden = !d.production;
  const reason = $('deployment-reason');
  reason.hidden = !((d.status === 'failed' || d.status === 'canceled') && d.reason);
  reason.textContent = reason.hidden ? '' : d.reason;
  const showProduction = d.status === 'ready' && d.production;
  $('deployment-production-row').hidden = !showProduction;
  $('deployment-production-url').hidden = !showProduction;
  $('cancel').hidden = !running;
  renderProgress(d.progress);
  renderElapsed(ctx);
  if (running) ctx.timer('elapsed', () => renderElapsed(ctx), 1000, true);
  else ctx.cancel('elapsed');
}

function renderProgress(progress) {
  const row = $('deployment-progress-row');
  row.hidden = !progress;
  if (!progress) return;
  const bar = $('deployment-progress');
  bar.max = Math.max(progress.total, 1);
  bar.value = Math.min(progress.done, bar.max);
  $('deployment-progress-text').textContent = `${progress.done} of ${progress.total} files`;
}

function renderElapsed(ctx) {
  const d = ctx.dep;
  const end = d.finished_at ? Date.parse(d.finished_at) : Date.now();
  $('deployment-elapsed').textContent = formatDuration(end - Date.parse(d.created_at));
}

async function onCancel() {
  const ctx = current;
  if (!ctx || !ctx.dep) return;
  await withButton($('cancel'), async () => {
    const dep = await api('POST', `/deployments/${enc(ctx.dep.id)}/cancel`);
    if (ctx.alive) applyDeployment(ctx, dep);
  });
}

// ---------------------------------------------------------------------------------------------
// The log stream

function openStream(ctx) {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const url = `${proto}//${location.host}/api/v1/deployments/${enc(ctx.dep.id)}/logs/stream?since=${ctx.lastSeq}`;
  let ws;
  try {
    // Browsers cannot set Authorization on a WebSocket: the token travels as a subprotocol.
    ws = new WebSocket(url, ['scalemesh.logs.v1', `bearer.${getToken()}`]);
  } catch (err) {
    showFlash(`Could not open the log stream: ${err.message}`);
    return;
  }
  ctx.socket = ws;
  ws.addEventListener('message', (event) => {
    if (ctx.socket === ws) onFrame(ctx, event.data);
  });
  ws.addEventListener('close', () => {
    if (ctx.socket !== ws) return;
    ctx.socket = null;
    if (ctx.alive && !ctx.ended) reconnectLater(ctx);
  });
  // An error is always followed by close, which reconnects.
}

function closeSocket(ctx) {
  const ws = ctx.socket;
  ctx.socket = null;
  if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000, 'page left');
}

/** Reconnect after 1 s, 2 s, 4 s … at most 10 s, resuming after the last line received. */
function reconnectLater(ctx) {
  $('log-connection').hidden = false;
  const delay = Math.min(1000 * 2 ** ctx.retry, 10000);
  ctx.retry += 1;
  ctx.timer('reconnect', async () => {
    // A plain request first: it signs out on a revoked token (a refused WebSocket says nothing
    // about why) and brings the deployment up to date.
    try {
      const dep = await api('GET', `/deployments/${enc(ctx.dep.id)}`);
      if (!ctx.alive) return;
      applyDeployment(ctx, dep);
    } catch (err) {
      if (!ctx.alive || err.status === 401) return;
      if (err.status === 404) {
        reportError(err);
        $('log-connection').hidden = true;
        return;
      }
    }
    if (ctx.alive && !ctx.socket) openStream(ctx);
  }, delay);
}

function onFrame(ctx, data) {
  let frame;
  try {
    frame = JSON.parse(data);
  } catch {
    return;
  }
  ctx.retry = 0;
  $('log-connection').hidden = true;
  if (frame.type === 'state') {
    Object.assign(ctx.dep, { status: frame.status, phase: frame.phase, progress: frame.progress });
    renderDeploymentState(ctx);
  } else if (frame.type === 'lines') {
    appendLines(ctx, frame.lines || []);
  } else if (frame.type === 'end') {
    ctx.ended = true;
    Object.assign(ctx.dep, { status: frame.status, reason: frame.reason, progress: null });
    renderDeploymentState(ctx);
    ctx.cancel('elapsed');
    refetchFinished(ctx);
  }
}

/** After `end`: the API has finished_at and whether it went live. */
async function refetchFinished(ctx) {
  try {
    const dep = await api('GET', `/deployments/${enc(ctx.dep.id)}`);
    if (ctx.alive) applyDeployment(ctx, dep);
  } catch (err) {
    if (ctx.alive) reportError(err);
  }
}

/** Take new lines now (a reconnect resumes after them); draw them all on the next frame. */
function appendLines(ctx, lines) {
  const fresh = lines.filter((l) => l.seq > ctx.lastSeq);
  if (fresh.length === 0) return;
  ctx.lastSeq = fresh[fresh.length - 1].seq;
  ctx.pending = ctx.pending.concat(fresh);
  if (ctx.pending.length > MAX_LOG_LINES) {
    ctx.pending = ctx.pending.slice(-MAX_LOG_LINES);
    $('log-truncated').hidden = false;
  }
  if (!ctx.drawing) {
    ctx.drawing = true;
    requestAnimationFrame(() => drawLines(ctx));
  }
}

function drawLines(ctx) {
  ctx.drawing = false;
  if (!ctx.alive) return;
  const log = $('log');
  // Where the reader is now decides, not the last scroll event: it may not have fired yet.
  if (ctx.follow && log.scrollHeight - log.scrollTop - log.clientHeight > FOLLOW_SLACK_PX) {
    ctx.follow = false;
    $('log-follow').hidden = false;
  }
  const frag = document.createDocumentFragment();
  for (const line of ctx.pending) frag.append(logLine(line));
  ctx.pending = [];
  log.append(frag);
  let excess = log.childElementCount - MAX_LOG_LINES;
  if (excess > 0) $('log-truncated').hidden = false;
  while (excess-- > 0) log.firstElementChild.remove();
  if (ctx.follow) log.scrollTop = log.scrollHeight;
}

function logLine(line) {
  const stream = ['stdout', 'stderr', 'system'].includes(line.stream) ? line.stream : 'stdout';
  const el = h('div', { class: `log-line log-${stream}`, 'data-seq': line.seq, title: line.ts || null });
  appendAnsi(el, String(line.text ?? ''));
  return el;
}

/** Follow the bottom while the reader is there; offer a way back once they scroll up. */
function onLogScroll() {
  const ctx = current;
  if (!ctx || !('follow' in ctx)) return;
  const log = $('log');
  ctx.follow = log.scrollHeight - log.scrollTop - log.clientHeight <= FOLLOW_SLACK_PX;
  $('log-follow').hidden = ctx.follow;
}

function onFollow() {
  const log = $('log');
  if (current) current.follow = true;
  log.scrollTop = log.scrollHeight;
  $('log-follow').hidden = true;
  log.focus({ preventScroll: true });
}

// ---------------------------------------------------------------------------------------------
// ANSI colours: SGR sequences become classes; every other escape and control character goes.

// A CSI sequence (ESC [ params intermediates final), an OSC (ESC ] … BEL or ESC \, or to the
// end of the line), or ESC and whatever one character follows it.
const ESCAPE = /\x1b(?:\[([0-?]*)([ -\/]*)([@-~])|\][\s\S]*?(?:\x07|\x1b\\|$)|[\s\S]?)/g;
// C0 controls but tab, DEL, and the C1 controls (which include the one-byte CSI).
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/g;

const PLAIN = { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false };

/** Append `text` to `parent` as text nodes and classed spans. Each line starts plain. */
function appendAnsi(parent, text) {
  const sgr = { ...PLAIN };
  let last = 0;
  const emit = (chunk) => {
    const clean = chunk.replace(CONTROL, '');
    if (!clean) return;
    const classes = sgrClasses(sgr);
    parent.append(classes ? h('span', { class: classes, text: clean }) : clean);
  };
  for (const m of text.matchAll(ESCAPE)) {
    emit(text.slice(last, m.index));
    last = m.index + m[0].length;
    if (m[3] === 'm' && !m[2] && /^[\d;:]*$/.test(m[1])) applySgr(sgr, m[1]);
  }
  emit(text.slice(last));
}

function applySgr(sgr, params) {
  const codes = params === '' ? [0] : params.split(/[;:]/).map((p) => (p === '' ? 0 : Number(p)));
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i];
    if (c === 0) Object.assign(sgr, PLAIN);
    else if (c === 1) sgr.bold = true;
    else if (c === 2) sgr.dim = true;
    else if (c === 3) sgr.italic = true;
    else if (c === 4) sgr.underline = true;
    else if (c === 22) sgr.bold = sgr.dim = false;
    else if (c === 23) sgr.italic = false;
    else if (c === 24) sgr.underline = false;
    else if (c >= 30 && c <= 37) sgr.fg = c - 30;
    else if (c >= 90 && c <= 97) sgr.fg = c - 90 + 8;
    else if (c === 39) sgr.fg = null;
    else if (c >= 40 && c <= 47) sgr.bg = c - 40;
    else if (c >= 100 && c <= 107) sgr.bg = c - 100 + 8;
    else if (c === 49) sgr.bg = null;
    else if (c === 38 || c === 48) i += codes[i + 1] === 5 ? 2 : codes[i + 1] === 2 ? 4 : 0; // 256/RGB: not shown
  }
}

const sgrClasses = (sgr) => [
  sgr.fg !== null && `ansi-fg-${sgr.fg}`, sgr.bg !== null && `ansi-bg-${sgr.bg}`, sgr.bold && 'ansi-bold',
  sgr.dim && 'ansi-dim', sgr.italic && 'ansi-italic', sgr.underline && 'ansi-underline',
].filter(Boolean).join(' ');

// ---------------------------------------------------------------------------------------------
// Start

function init() {
  $('signin-form').addEventListener('submit', onSignin);
  $('signout').addEventListener('click', () => {
    signOut('');
    history.replaceState(null, '', '#/');
  });
  $('new-project-form').addEventListener('submit', onNewProject);
  for (const id of NP_INPUTS) {
    $(id).addEventListener('input', () => {
      if ($(id).getAttribute('aria-invalid') === 'true') setFieldError(id, '');
    });
  }
  $('deploy').addEventListener('click', onDeploy);
  $('rollback').addEventListener('click', onRollback);
  $('cancel').addEventListener('click', onCancel);
  $('env-form').addEventListener('submit', onEnvSubmit);
  $('env-sensitive').addEventListener('change', () => showSecretInput($('env-sensitive').checked));
  $('env-key').addEventListener('input', () => {
    if ($('env-key').getAttribute('aria-invalid') === 'true') setFieldError('env-key', '');
  });
  $('member-form').addEventListener('submit', onMemberSubmit);
  $('delete-form').addEventListener('submit', onDeleteProject);
  $('delete-confirm').addEventListener('input', () => {
    const ctx = current;
    $('delete-submit').disabled = !(ctx && ctx.settings && $('delete-confirm').value.trim() === ctx.settings.name);
  });
  $('token-form').addEventListener('submit', onNewToken);
  for (const id of Object.values(TOKEN_FIELDS)) {
    $(id).addEventListener('input', () => {
      if ($(id).getAttribute('aria-invalid') === 'true') setFieldError(id, '');
    });
  }
  $('token-copy').addEventListener('click', onCopySecret);
  $('token-done').addEventListener('click', onSecretDone);
  $('log').addEventListener('scroll', onLogScroll, { passive: true });
  $('log-follow').addEventListener('click', onFollow);
  window.addEventListener('hashchange', () => route(true));
  setInterval(refreshRelativeTimes, 30000);
  route(false);
}

init();
