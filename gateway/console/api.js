// The admin API as the console calls it: same origin, the browser's client certificate, JSON in
// and out, and the cross-site token on every state-changing request. Nothing personal is ever
// put in a URL: a CPR number travels in a POST body only.

let token = '';

/** The token GET /admin/v1/session gave; sent as X-CSRF-Token on POST. */
export function useToken(t) {
  token = t;
}

/** An error the admin API answered (problem+json), with its status. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

async function call(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') {
    headers['X-CSRF-Token'] = token;
  }
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
  }
  const r = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
    cache: 'no-store',
  });
  const type = r.headers.get('content-type') || '';
  const data = type.includes('json') ? await r.json() : await r.text();
  if (!r.ok) {
    throw new ApiError(r.status, typeof data === 'object' ? data : { detail: String(data) });
  }
  return data;
}

/** GET path with the query parameters that are set. */
export function get(path, query = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== null && v !== '') {
      q.set(k, v);
    }
  }
  const s = q.toString();
  return call('GET', s ? `${path}?${s}` : path);
}

/** POST path (with a JSON body when given). */
export function post(path, body) {
  return call('POST', path, body);
}
