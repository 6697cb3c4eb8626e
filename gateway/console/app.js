// The console: one page over the admin API, drawn in the browser. Pages are addressed by the
// part after '#', which holds ids, case numbers, types and times only, never a CPR number or a
// name. Every text is set as text (never parsed as HTML).

import { ApiError, get, post, useToken } from './api.js';
import { bars, sparkline } from './charts.js';
import { duration, language, setLanguage, t, time } from './i18n.js';

const REFRESH_SECONDS = 10;
const TYPES = [
  'police.report.filed',
  'indictment.filed',
  'hearing.scheduled',
  'verdict.delivered',
  'custody.admitted',
  'custody.released',
  'message.withdrawn',
];
const STATES = ['queued', 'retrying', 'delivered', 'dead', 'superseded'];

let session = null;
let authorities = [];
let refresh = null;

/** An element with attributes (`class`, `for`, …, on* as listeners) and children (text or nodes). */
function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) {
      e.addEventListener(k.slice(2), v);
    } else if (v === true) {
      e.setAttribute(k, '');
    } else {
      e.setAttribute(k, String(v));
    }
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const main = () => document.getElementById('main-content');

function say(text) {
  const s = document.getElementById('status');
  s.textContent = '';
  s.append(text);
}

function problem(e) {
  return h('p', { class: 'problem', role: 'alert' }, t('error', { detail: e instanceof ApiError ? e.message : String(e) }));
}

function link(route, text) {
  return h('a', { href: `#/${route}` }, text);
}

function table(caption, head, rows) {
  return h(
    'table',
    {},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, head.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c, i) => (i === 0 ? h('th', { scope: 'row' }, c) : h('td', {}, c)))))),
  );
}

function dl(pairs) {
  return h('dl', { class: 'facts' }, pairs.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

function field(id, label, input) {
  input.id = id;
  input.name = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), input);
}

function select(options, value) {
  return h(
    'select',
    {},
    options.map(([v, text]) => h('option', { value: v, selected: v === (value ?? '') }, text)),
  );
}

function stateText(s) {
  return h('span', { class: `state state-${s}` }, t(`state.${s}`));
}

/** Asks to confirm in the page's dialog; resolves true on OK. */
function confirmed(title, text, ok) {
  const d = document.getElementById('confirm');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-cancel').textContent = t('cancel');
  document.getElementById('confirm-ok').textContent = ok;
  return new Promise((resolve) => {
    d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true });
    d.returnValue = '';
    d.showModal();
    document.getElementById('confirm-cancel').focus();
  });
}

// ---- pages --------------------------------------------------------------------------------

const pages = {
  overview: { roles: ['operator', 'auditor'], title: 'overview', draw: overview },
  messages: { roles: ['operator'], title: 'messages', draw: messages },
  message: { roles: ['operator'], title: 'message', draw: message },
  'dead-letters': { roles: ['operator'], title: 'deadLetters', draw: deadLetters },
  cases: { roles: ['operator'], title: 'cases', draw: cases },
  audit: { roles: ['auditor'], title: 'audit', draw: audit },
  policies: { roles: ['operator'], title: 'policies', draw: policies },
};
const nav = ['overview', 'messages', 'dead-letters', 'cases', 'audit', 'policies'];

async function overview(root) {
  const draw = async () => {
    const o = await get('/admin/v1/overview');
    const rows = o.authorities.map((a) => [
      a.name,
      String(a.accepted_last_hour),
      String(a.delivered_last_hour),
      String(a.waiting),
      a.dead > 0 ? link(`dead-letters`, String(a.dead)) : '0',
      time(a.oldest_waiting),
      sparkline(a.backlog_trend, t('trendOf', { who: a.name })),
      h('span', { class: `breaker breaker-${a.breaker}` }, t(`breaker.${a.breaker}`)),
      a.last_error ? `${a.last_error} (${time(a.last_error_at)})` : '—',
    ]);
    const broker = o.broker === null
      ? t('brokerNone')
      : o.broker.blocked
        ? t('blocked', { why: o.broker.blocked })
        : t(o.broker.connected ? 'connected' : 'notConnected');
    const store = o.store.ready ? t('ready') : t('notReady', { why: o.store.error });
    const lastV = o.audit.last_verification;
    const content = h(
      'div',
      {},
      h('p', { class: 'meta' }, `${t('node')}: ${o.node} · ${t('updated', { at: time(o.at), n: REFRESH_SECONDS })}`),
      table(
        t('authoritiesCaption'),
        [t('authority'), t('acceptedHour'), t('deliveredHour'), t('waiting'), t('dead'), t('oldestWaiting'), t('trend'), t('breaker'), t('lastError')],
        rows,
      ),
      h(
        'div',
        { class: 'cards' },
        h('section', { class: 'card', 'aria-labelledby': 'c-broker' }, h('h2', { id: 'c-broker' }, t('broker')), h('p', {}, broker)),
        h('section', { class: 'card', 'aria-labelledby': 'c-store' }, h('h2', { id: 'c-store' }, t('store')), h('p', {}, store), o.draining ? h('p', {}, t('draining')) : null),
        h(
          'section',
          { class: 'card', 'aria-labelledby': 'c-certs' },
          h('h2', { id: 'c-certs' }, t('certificates')),
          h('ul', {}, o.certificates.map((c) => h('li', { class: c.near_end ? 'warn' : '' }, `${c.certificate}: ${t('daysLeft', { n: c.days_left })}${c.near_end ? ` — ${t('nearEnd')}` : ''}`))),
        ),
        h(
          'section',
          { class: 'card', 'aria-labelledby': 'c-keys' },
          h('h2', { id: 'c-keys' }, t('signingKeys')),
          h('ul', {}, o.signing_keys.map((k) => h('li', {}, `${k.kid}: ${k.current ? t('current') : `${t('retired')} ${time(k.retired_at)}`}`))),
        ),
        h(
          'section',
          { class: 'card', 'aria-labelledby': 'c-audit' },
          h('h2', { id: 'c-audit' }, t('auditChain')),
          h('p', {}, t('entries', { n: o.audit.entries })),
          h('p', {}, lastV ? t('lastVerification', { at: time(lastV.started_at), status: lastV.status }) : t('notVerified')),
        ),
      ),
    );
    root.replaceChildren(content);
  };
  await draw();
  refresh = setInterval(() => {
    if (!document.hidden) draw().catch((e) => root.replaceChildren(problem(e)));
  }, REFRESH_SECONDS * 1000);
}

async function loadAuthorities() {
  if (authorities.length === 0 && session.role === 'operator') {
    authorities = (await get('/admin/v1/authorities')).items;
  }
  return authorities;
}

function authorityOptions() {
  return [['', t('any')], ...authorities.map((a) => [a.id, a.name])];
}

async function messages(root, _arg, params) {
  await loadAuthorities();
  const form = h(
    'form',
    { class: 'search', 'aria-labelledby': 'find-title' },
    h('h2', { id: 'find-title' }, t('findMessages')),
    field('f-id', t('messageId'), h('input', { type: 'text', value: params.get('id') ?? '', autocomplete: 'off' })),
    field('f-doc', t('documentId'), h('input', { type: 'text', value: params.get('document_id') ?? '', autocomplete: 'off' })),
    field('f-case', t('caseNumber'), h('input', { type: 'text', value: params.get('case') ?? '', autocomplete: 'off' })),
    field('f-type', t('type'), select([['', t('any')], ...TYPES.map((x) => [x, x])], params.get('type'))),
    field('f-sender', t('sender'), select(authorityOptions(), params.get('sender'))),
    field('f-recipient', t('recipient'), select(authorityOptions(), params.get('recipient'))),
    field('f-state', t('state'), select([['', t('any')], ...STATES.map((s) => [s, t(`state.${s}`)])], params.get('status'))),
    field('f-from', t('fromTime'), h('input', { type: 'datetime-local', value: params.get('from_local') ?? '' })),
    field('f-to', t('toTime'), h('input', { type: 'datetime-local', value: params.get('to_local') ?? '' })),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, t('find'))),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = (id) => form.querySelector(`#${id}`).value.trim();
    if (v('f-id')) {
      location.hash = `#/message/${encodeURIComponent(v('f-id'))}`;
      return;
    }
    const q = new URLSearchParams();
    const set = (k, x) => x && q.set(k, x);
    set('document_id', v('f-doc'));
    set('case', v('f-case'));
    set('type', v('f-type'));
    set('sender', v('f-sender'));
    set('recipient', v('f-recipient'));
    set('status', v('f-state'));
    set('from_local', v('f-from'));
    set('to_local', v('f-to'));
    q.set('go', '1');
    location.hash = `#/messages?${q}`;
  });
  const results = h('div', { id: 'results' });
  root.replaceChildren(form, results);
  if (!params.get('go')) return;
  const iso = (local) => (local ? new Date(local).toISOString().replace(/\.\d+Z$/, 'Z') : undefined);
  const query = {
    document_id: params.get('document_id'),
    case: params.get('case'),
    type: params.get('type'),
    sender: params.get('sender'),
    recipient: params.get('recipient'),
    status: params.get('status'),
    from: iso(params.get('from_local')),
    to: iso(params.get('to_local')),
    limit: 50,
  };
  const rows = [];
  const body = h('div', {});
  results.replaceChildren(body);
  const more = async (cursor) => {
    const page = await get('/admin/v1/messages', { ...query, cursor });
    for (const m of page.items) {
      rows.push([
        link(`message/${m.id}`, m.id),
        m.type,
        m.sender,
        time(m.received_at),
        link(`cases/${encodeURIComponent(m.correlation_id)}`, m.correlation_id),
        h('span', {}, m.recipients.map((r) => h('span', { class: 'pill' }, `${r.recipient}: `, stateText(r.status)))),
      ]);
    }
    const list = rows.length
      ? table(t('found', { n: rows.length }), [t('messageId'), t('type'), t('sender'), t('received'), t('caseNumber'), t('recipients')], rows)
      : h('p', {}, t('nothing'));
    const next = page.next_cursor
      ? h('button', { type: 'button', onclick: () => more(page.next_cursor).catch((e) => body.append(problem(e))) }, t('more'))
      : null;
    body.replaceChildren(list, next ?? '');
  };
  await more(undefined);
}

async function message(root, id) {
  const m = await get(`/admin/v1/messages/${encodeURIComponent(id)}`);
  const dead = m.recipients.filter((r) => r.status === 'dead');
  const rows = m.recipients.map((r) => [
    r.recipient,
    stateText(r.status),
    r.attempts === undefined ? '—' : String(r.attempts),
    r.last_error ?? r.reason ?? '—',
    r.removed && r.removed.length
      ? h('ul', {}, r.removed.map((x) => h('li', {}, t('byRule', { path: x.path, rule: x.rule, action: x.action }))))
      : '—',
    r.alterations && r.alterations.length ? h('ul', {}, r.alterations.map((a) => h('li', {}, a))) : '—',
    r.signed_with ?? '—',
    r.acked_at ? t('ackedAt', { at: time(r.acked_at) }) : r.delivered_at ? t('deliveredAt', { at: time(r.delivered_at) }) : '—',
    h(
      'span',
      {},
      link(`policies?message=${m.id}&recipient=${encodeURIComponent(r.recipient)}`, t('explain')),
      r.status === 'dead' ? [' ', replayButton(m, r.recipient)] : null,
    ),
  ]);
  root.replaceChildren(
    dl([
      [t('messageId'), m.id],
      [t('type'), m.type],
      [t('sender'), m.sender],
      [t('documentId'), m.source_document_id],
      [t('received'), time(m.received_at)],
      [t('caseNumber'), link(`cases/${encodeURIComponent(m.correlation_id)}`, m.correlation_id)],
      [t('senderSigned'), t(m.sender_signed ? 'yes' : 'no')],
      [t('traceId'), m.trace_id ?? '—'],
      [t('policyDigest'), m.policy_digest],
      [t('bodyPurged'), t(m.body_purged ? 'yes' : 'no')],
    ]),
    table(
      t('recipients'),
      [t('recipient'), t('status'), t('attempts'), t('lastError'), t('removed'), t('alterations'), t('signedWith'), t('receipt'), ''],
      rows,
    ),
    dead.length ? h('p', {}, t('deadLetters'), ': ', String(dead.length)) : '',
  );
}

function replayButton(m, recipient) {
  return h(
    'button',
    {
      type: 'button',
      class: 'danger replay',
      onclick: async () => {
        const ok = await confirmed(t('replayTitle'), t('replayText', { id: m.message_id ?? m.id, type: m.type, recipient }), t('replay'));
        if (!ok) return;
        const id = m.message_id ?? m.id;
        try {
          const r = await post(`/admin/v1/messages/${encodeURIComponent(id)}/replay?recipient=${encodeURIComponent(recipient)}`);
          const outcome = r.recipients.map((x) => x.outcome).join(', ');
          say(t('replayed', { id, recipient, outcome }));
        } catch (e) {
          say(problem(e));
        }
        route();
      },
    },
    t('replay'),
  );
}

function reloadButton() {
  return h(
    'button',
    {
      type: 'button',
      class: 'danger',
      onclick: async () => {
        if (!(await confirmed(t('reloadTitle'), t('reloadText'), t('reload')))) return;
        try {
          const r = await post('/admin/v1/policies/reload');
          say(t('reloaded', { digest: r.digest }));
        } catch (e) {
          say(e instanceof ApiError ? t('reloadRefused', { detail: e.message }) : problem(e));
        }
        route();
      },
    },
    t('reload'),
  );
}

async function deadLetters(root) {
  const page = await get('/admin/v1/dead-letters', { limit: 100 });
  const rows = page.items.map((d) => [
    link(`message/${d.message_id}`, d.message_id),
    d.type,
    d.recipient,
    String(d.attempts),
    d.last_error ?? '—',
    replayButton(d, d.recipient),
  ]);
  root.replaceChildren(
    h('div', { class: 'actions' }, reloadButton()),
    rows.length
      ? table(t('deadCaption'), [t('messageId'), t('type'), t('recipient'), t('attempts'), t('lastError'), ''], rows)
      : h('p', {}, t('noDead')),
  );
}

/** The case-stage histograms from /metrics: { "from → to": [[le, count in bucket], …] }. */
async function chainStages() {
  const text = await get('/metrics');
  const pairs = new Map();
  for (const line of String(text).split('\n')) {
    const m = line.match(/^jxg_case_stage_duration\w*_bucket\{([^}]*)\}\s+(\d+)/);
    if (!m) continue;
    const labels = Object.fromEntries([...m[1].matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    const key = `${labels.from} → ${labels.to}`;
    if (!pairs.has(key)) pairs.set(key, { from: labels.from, to: labels.to, buckets: [] });
    pairs.get(key).buckets.push([labels.le, Number(m[2])]);
  }
  return [...pairs.values()];
}

async function cases(root, c) {
  const form = h(
    'form',
    { class: 'search', 'aria-labelledby': 'case-title' },
    h('h2', { id: 'case-title' }, t('caseOpen')),
    field('f-case', t('caseNumber'), h('input', { type: 'text', value: c ?? '', autocomplete: 'off' })),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, t('show'))),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = form.querySelector('#f-case').value.trim();
    if (v) location.hash = `#/cases/${encodeURIComponent(v)}`;
  });
  const parts = [form];
  if (c) {
    const tl = await get(`/admin/v1/cases/${encodeURIComponent(c)}/timeline`);
    parts.push(h('h2', {}, t('timeline')));
    parts.push(
      h(
        'ol',
        { class: 'timeline' },
        tl.messages.map((m) =>
          h(
            'li',
            {},
            h('span', { class: 'when' }, time(m.accepted_at)),
            ' ',
            link(`message/${m.id}`, m.type),
            ` — ${m.sender} → `,
            m.recipients.map((r) => h('span', { class: 'pill' }, `${r.recipient}: `, stateText(r.status), r.delivered_at ? ` ${time(r.delivered_at)}` : '')),
          ),
        ),
      ),
    );
    parts.push(h('h2', {}, t('stages')));
    if (tl.stages.length) {
      parts.push(
        h(
          'figure',
          {},
          bars(
            tl.stages.map((s) => ({ label: `${s.from} → ${s.to}`, value: s.seconds, text: duration(s.seconds) })),
            t('stageChart', { c }),
          ),
        ),
      );
      parts.push(table(t('stages'), [t('stage'), t('duration')], tl.stages.map((s) => [`${s.from} → ${s.to}`, duration(s.seconds)])));
    } else {
      parts.push(h('p', {}, t('noStages')));
    }
  }
  parts.push(h('h2', {}, t('chainStages')));
  const chain = await chainStages();
  if (chain.length === 0) {
    parts.push(h('p', {}, t('noStages')));
  }
  for (const pair of chain) {
    let before = 0;
    const items = pair.buckets
      .filter(([le]) => le !== '+Inf')
      .map(([le, cumulative]) => {
        const n = cumulative - before;
        before = cumulative;
        return { label: t('within', { le: duration(Number(le)) }), value: n, text: String(n) };
      });
    parts.push(h('figure', {}, h('figcaption', {}, `${pair.from} → ${pair.to}`), bars(items, t('chainStageChart', pair))));
  }
  root.replaceChildren(...parts);
}

async function audit(root) {
  const progress = h('progress', { max: 1, value: 0, 'aria-label': t('verify') });
  const outcome = h('p', { role: 'status' });
  const verify = h('button', { type: 'button' }, t('verify'));
  verify.addEventListener('click', async () => {
    verify.disabled = true;
    try {
      let job = await post('/admin/v1/audit/verifications');
      while (job.status === 'running') {
        progress.max = Math.max(1, job.total);
        progress.value = job.checked;
        outcome.textContent = t('verifying', { checked: job.checked, total: job.total });
        await new Promise((r) => setTimeout(r, 300));
        job = await get(`/admin/v1/audit/verifications/${job.id}`);
      }
      progress.value = progress.max;
      outcome.textContent = job.status === 'ok'
        ? t('verifiedOk', { n: job.report.entries, c: job.report.checkpoints, h: job.report.last_hash.slice(0, 16) })
        : job.status === 'bad'
          ? t('verifiedBad', { seq: job.seq, reason: job.reason })
          : t('verifyFailed', { reason: job.reason });
    } catch (e) {
      outcome.replaceChildren(problem(e));
    }
    verify.disabled = false;
  });

  const entries = h('div', {});
  const byMessage = h(
    'form',
    { class: 'search', 'aria-labelledby': 'entries-title' },
    h('h2', { id: 'entries-title' }, t('entriesOf')),
    field('a-message', t('messageId'), h('input', { type: 'text', autocomplete: 'off' })),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, t('show'))),
  );
  byMessage.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const id = byMessage.querySelector('#a-message').value.trim();
      const log = await get('/admin/v1/audit', { message_id: id, limit: 200 });
      entries.replaceChildren(
        table(
          t('entriesOf'),
          ['#', t('at'), t('event'), t('actor'), t('recipient'), t('rule'), t('detail')],
          log.items.map((e) => [String(e.seq), time(e.at), e.event, e.actor ?? '—', e.recipient ?? '—', e.rule ?? '—', e.detail ?? '—']),
        ),
      );
    } catch (e) {
      entries.replaceChildren(problem(e));
    }
  });

  const found = h('div', {});
  const cpr = h('input', { type: 'text', inputmode: 'numeric', autocomplete: 'off', spellcheck: 'false' });
  // a POST form: should the script not run, the number still goes in a body, never an address
  const subject = h(
    'form',
    { class: 'search', method: 'post', action: '/console/', 'aria-labelledby': 'subject-title' },
    h('h2', { id: 'subject-title' }, t('subjectAccess')),
    h('p', { class: 'help' }, t('subjectHelp')),
    field('a-cpr', t('cpr'), cpr),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, t('search'))),
  );
  subject.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const r = await post('/admin/v1/audit/subject-access', { cpr: cpr.value.trim() });
      found.replaceChildren(
        h('p', {}, t('disclosures', { n: r.disclosures.length })),
        table(
          t('disclosuresCaption'),
          [t('recipient'), t('at'), t('event'), t('messageId'), t('type'), t('rule'), t('later')],
          r.disclosures.map((d) => {
            const entry = r.entries.find((e) => e.message_id === d.message_id && e.recipient === d.recipient && e.rule);
            return [
              d.recipient,
              time(d.at),
              d.event,
              d.message_id,
              d.type,
              entry ? entry.rule : '—',
              d.later ? `${d.later.act} ${time(d.later.at)}` : '—',
            ];
          }),
        ),
      );
    } catch (e) {
      found.replaceChildren(problem(e));
    }
  });

  root.replaceChildren(
    h('section', { 'aria-labelledby': 'verify-title' }, h('h2', { id: 'verify-title' }, t('verify')), verify, ' ', progress, outcome),
    byMessage,
    entries,
    subject,
    found,
  );
}

async function policies(root, _arg, params) {
  await loadAuthorities();
  const set = await get('/admin/v1/policies');
  const form = h(
    'form',
    { class: 'search', 'aria-labelledby': 'explain-title' },
    h('h2', { id: 'explain-title' }, t('explainTitle')),
    field('p-message', t('messageId'), h('input', { type: 'text', value: params.get('message') ?? '', autocomplete: 'off' })),
    field('p-recipient', t('recipient'), select(authorities.map((a) => [a.id, a.name]), params.get('recipient'))),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, t('explain'))),
  );
  const explained = h('div', { id: 'explained' });
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams({
      message: form.querySelector('#p-message').value.trim(),
      recipient: form.querySelector('#p-recipient').value,
    });
    location.hash = `#/policies?${q}`;
  });
  const listed = set.policies.map((p) => [p.id, p.effect, `${p.file}:${p.line}`]);
  const rules = set.disclosure.map((d) => [d.id, d.kind]);
  root.replaceChildren(
    h('div', { class: 'actions' }, reloadButton()),
    form,
    explained,
    h('h2', {}, t('policySet')),
    dl([
      [t('digest'), set.digest],
      [t('origin'), set.origin],
      [t('loadedAt'), time(set.loaded_at)],
    ]),
    table(t('policies'), [t('policy'), t('decision'), t('origin')], listed),
    table(t('profiles'), [t('rule'), t('kind')], rules),
  );
  const id = params.get('message');
  const recipient = params.get('recipient');
  if (id && recipient) {
    try {
      const e = await get('/admin/v1/policies/explain', { message_id: id, recipient });
      const decision = (d) => `${d.effect} (${d.policies.join(', ')})${d.reason ? ` — ${d.reason}` : ''}`;
      explained.replaceChildren(
        dl([
          [t('type'), e.message_type],
          [t('send'), `${e.sender}: ${decision(e.send)}`],
          [t('routed'), t(e.routed ? 'yes' : 'no')],
          [t('receive'), `${e.recipient}: ${decision(e.receive)}`],
          [t('result'), t(e.receives ? 'receives' : 'receivesNot', { r: e.recipient })],
        ]),
        e.removed.length
          ? table(t('cuts'), [t('removed'), t('rule'), t('detail')], e.removed.map((r) => [r.path, r.rule, r.action]))
          : h('p', {}, t('noCuts')),
      );
    } catch (err) {
      explained.replaceChildren(problem(err));
    }
  }
}

// ---- the frame ----------------------------------------------------------------------------

function drawFrame() {
  document.getElementById('skip').textContent = t('skip');
  document.getElementById('lang-label').textContent = t('language');
  document.getElementById('lang').value = language();
  document.getElementById('role').textContent = t(session.role);
  const here = (location.hash.slice(2).split(/[/?]/)[0]) || 'overview';
  const items = nav
    .filter((p) => pages[p].roles.includes(session.role))
    .map((p) => h('li', {}, h('a', { href: `#/${p}`, 'aria-current': p === here ? 'page' : false }, t(pages[p].title))));
  document.getElementById('nav').replaceChildren(h('ul', {}, items));
}

async function route() {
  if (refresh) {
    clearInterval(refresh);
    refresh = null;
  }
  // which page is drawn in full, for whoever waits on it (the browser tests)
  delete document.body.dataset.drawn;
  const drawing = location.hash || '#';
  const raw = location.hash.startsWith('#/') ? location.hash.slice(2) : 'overview';
  const [path, query] = raw.split('?');
  const [name, ...rest] = path.split('/');
  const page = pages[name] ?? pages.overview;
  const arg = rest.length ? decodeURIComponent(rest.join('/')) : undefined;
  drawFrame();
  const root = main();
  // the title names the page only: never what was looked up
  document.title = `${t(page.title)} — jxg`;
  const heading = h('h1', {}, t(page.title), arg && name !== 'message' ? `: ${arg}` : '');
  const body = h('div', {});
  root.replaceChildren(heading, body);
  if (!page.roles.includes(session.role)) {
    body.replaceChildren(h('p', { class: 'problem', role: 'alert' }, t('notForRole')));
  } else {
    body.replaceChildren(h('p', {}, t('loading')));
    try {
      await page.draw(body, arg, new URLSearchParams(query ?? ''));
    } catch (e) {
      body.replaceChildren(problem(e));
    }
  }
  if ((location.hash || '#') === drawing) {
    document.body.dataset.drawn = drawing;
  }
}

async function start() {
  session = await get('/admin/v1/session');
  useToken(session.csrf_token);
  const chosen = localStorage.getItem('jxg-language');
  setLanguage(chosen ?? session.language);
  document.getElementById('lang').addEventListener('change', (ev) => {
    localStorage.setItem('jxg-language', ev.target.value);
    setLanguage(ev.target.value);
    route();
  });
  // the skip link moves focus to the page without touching the address
  document.getElementById('skip').addEventListener('click', (ev) => {
    ev.preventDefault();
    main().focus();
  });
  window.addEventListener('hashchange', () => {
    if (location.hash.startsWith('#/') || location.hash === '') {
      // what an action said belongs to the page it was taken on
      say('');
      route();
    }
  });
  await route();
}

start().catch((e) => main().replaceChildren(problem(e)));
