// podflow web UI: the little JavaScript the pages need. Every change is a
// call to the REST API (/api/v1) with the session cookie and the
// X-Requested-With header the API's CSRF check wants. Idle pages make no
// requests: only a page whose live part shows running work subscribes to
// /live, and the server ends that stream once nothing runs.
(function () {
  'use strict';

  async function api(method, path, body) {
    const res = await fetch('/api/v1' + path, {
      method: method,
      credentials: 'same-origin',
      headers: { 'X-Requested-With': 'podflow', 'Content-Type': 'application/json', 'Accept': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { /* not JSON */ }
    if (!res.ok) {
      throw new Error((data && (data.detail || data.title)) || (res.status + ' ' + res.statusText));
    }
    return data;
  }

  function flash(msg, bad) {
    const el = document.getElementById('flash');
    if (!el) return;
    el.textContent = msg;
    el.className = bad ? 'flash bad' : 'flash';
    el.hidden = false;
    clearTimeout(flash.t);
    flash.t = setTimeout(function () { el.hidden = true; }, bad ? 10000 : 4000);
  }

  const enc = encodeURIComponent;

  // preview shows what a clear would touch (the API's dry run) and asks.
  function preview(what, refs) {
    return new Promise(function (resolve) {
      const d = document.getElementById('preview');
      document.getElementById('preview-what').textContent = what + ' (' + refs.length + ' task instance' + (refs.length === 1 ? '' : 's') + '):';
      const ul = document.getElementById('preview-list');
      ul.textContent = '';
      refs.forEach(function (r) {
        const li = document.createElement('li');
        li.textContent = r.task_id + (r.map_index >= 0 ? '[' + r.map_index + ']' : '');
        ul.appendChild(li);
      });
      const ok = document.getElementById('preview-ok');
      const cancel = document.getElementById('preview-cancel');
      function done(v) { ok.onclick = cancel.onclick = null; d.close(); resolve(v); }
      ok.onclick = function () { done(true); };
      cancel.onclick = function () { done(false); };
      d.showModal();
    });
  }

  const actions = {
    'mark-run': async function (b) {
      await api('PATCH', '/dags/' + enc(b.dataset.dag) + '/dagRuns/' + enc(b.dataset.run), { state: b.dataset.state });
      return 'Run marked ' + b.dataset.state;
    },
    'mark-task': async function (b) {
      const q = b.dataset.map ? '?map_index=' + enc(b.dataset.map) : '';
      await api('PATCH', '/dags/' + enc(b.dataset.dag) + '/dagRuns/' + enc(b.dataset.run) + '/taskInstances/' + enc(b.dataset.task) + q,
        { new_state: b.dataset.state });
      return 'Task marked ' + b.dataset.state;
    },
    'clear-task': async function (b) {
      const down = document.getElementById('downstream');
      const body = { dag_run_id: b.dataset.run, task_ids: [b.dataset.task], include_downstream: !!(down && down.checked), dry_run: true };
      const path = '/dags/' + enc(b.dataset.dag) + '/clearTaskInstances';
      const dry = await api('POST', path, body);
      if (!await preview('Clearing ' + b.dataset.task + (body.include_downstream ? ' and its downstream' : '') + ' reruns', dry.task_instances)) return null;
      body.dry_run = false;
      const res = await api('POST', path, body);
      return 'Cleared ' + res.total_entries + ' task instance(s)';
    },
    'clear-run': async function (b) {
      const path = '/dags/' + enc(b.dataset.dag) + '/dagRuns/' + enc(b.dataset.run) + '/clear';
      const dry = await api('POST', path, { dry_run: true });
      if (!await preview('Clearing the run reruns', dry.task_instances)) return null;
      const res = await api('POST', path, { dry_run: false });
      return 'Cleared ' + res.total_entries + ' task instance(s)';
    },
  };

  document.addEventListener('click', async function (e) {
    const b = e.target.closest('button[data-action]');
    if (!b || !actions[b.dataset.action]) return;
    b.disabled = true;
    try {
      const msg = await actions[b.dataset.action](b);
      if (msg) { flash(msg); setTimeout(function () { location.reload(); }, 300); }
    } catch (err) {
      flash(err.message, true);
    } finally {
      b.disabled = false;
    }
  });

  document.addEventListener('change', async function (e) {
    const box = e.target.closest('input[data-pause]');
    if (!box) return;
    try {
      await api('PATCH', '/dags/' + enc(box.dataset.pause), { is_paused: box.checked });
      box.nextElementSibling.textContent = box.checked ? 'paused' : 'active';
      flash(box.dataset.pause + (box.checked ? ' paused' : ' unpaused'));
    } catch (err) {
      box.checked = !box.checked;
      flash(err.message, true);
    }
  });

  // The trigger form: typed params plus a JSON conf, checked before submit.
  function triggerConf(form) {
    const conf = {};
    const errors = [];
    form.querySelectorAll('[data-param]').forEach(function (el) {
      const name = el.dataset.param;
      // Only changed params go into the conf: a DAG may forbid a run to
      // override a param, and the defaults apply anyway.
      const current = el.dataset.kind === 'boolean' ? String(el.checked) : el.value;
      if (current === el.dataset.default) return;
      switch (el.dataset.kind) {
        case 'boolean': conf[name] = el.checked; break;
        case 'integer':
          if (!/^-?\d+$/.test(el.value.trim())) errors.push(name + ': "' + el.value + '" is not a whole number');
          else conf[name] = parseInt(el.value, 10);
          break;
        case 'number':
          if (el.value.trim() === '' || isNaN(Number(el.value))) errors.push(name + ': "' + el.value + '" is not a number');
          else conf[name] = Number(el.value);
          break;
        case 'json':
          try { conf[name] = JSON.parse(el.value); } catch (err) { errors.push(name + ': not JSON (' + err.message + ')'); }
          break;
        default: conf[name] = el.value;
      }
    });
    const raw = document.getElementById('conf').value.trim() || '{}';
    try {
      const extra = JSON.parse(raw);
      if (extra === null || typeof extra !== 'object' || Array.isArray(extra)) errors.push('conf: must be a JSON object like {"key": "value"}');
      else Object.assign(conf, extra);
    } catch (err) {
      errors.push('conf: not valid JSON (' + err.message + ')');
    }
    return { conf: conf, errors: errors };
  }

  const trigger = document.getElementById('trigger');
  if (trigger) {
    const out = document.getElementById('conf-error');
    const check = function () {
      const r = triggerConf(trigger);
      out.hidden = r.errors.length === 0;
      out.textContent = r.errors.join('\n');
      return r;
    };
    trigger.addEventListener('input', check);
    trigger.addEventListener('submit', async function (e) {
      e.preventDefault();
      const r = check();
      if (r.errors.length) return;
      const body = { conf: r.conf };
      const id = document.getElementById('run-id').value.trim();
      if (id) body.dag_run_id = id;
      try {
        const run = await api('POST', '/dags/' + enc(trigger.dataset.dag) + '/dagRuns', body);
        location.href = '/dags/' + enc(trigger.dataset.dag) + '?triggered=' + enc(run.dag_run_id);
      } catch (err) {
        out.hidden = false;
        out.textContent = err.message;
      }
    });
  }

  // Live parts: subscribe only while something runs.
  const live = document.getElementById('live');
  if (live && live.querySelector('[data-active]')) {
    const es = new EventSource('/live?src=' + enc(live.dataset.src));
    es.addEventListener('update', function (e) {
      const focused = document.activeElement;
      const td = focused && live.contains(focused) && focused.closest('table.grid td');
      const key = td ? [td.parentElement.sectionRowIndex, td.cellIndex] : null;
      live.innerHTML = e.data;
      const table = key && live.querySelector('table.grid');
      const again = table && cellAt(table, key[0], key[1]);
      if (again) { rove(again); again.focus(); }
    });
    const stop = function () { es.close(); };
    es.addEventListener('idle', stop);
    es.addEventListener('gone', stop);
    window.addEventListener('pagehide', stop);
  }

  // Grid keyboard navigation: arrows, Home/End; Enter follows the link.
  // A cell is found by its table position (row, column), so the markup
  // carries no indices.
  function rove(cell) {
    const grid = cell.closest('table');
    grid.querySelectorAll('[tabindex="0"]').forEach(function (c) { c.tabIndex = -1; });
    cell.tabIndex = 0;
  }
  function cellAt(table, r, c) {
    const row = table.tBodies[0].rows[r];
    if (!row) return null;
    c = Math.max(1, Math.min(c, row.cells.length - 1));
    return row.cells[c] && row.cells[c].querySelector('.cell');
  }
  document.addEventListener('keydown', function (e) {
    const cell = e.target.closest && e.target.closest('table.grid .cell');
    if (!cell) return;
    const td = cell.closest('td');
    let r = td.parentElement.sectionRowIndex, c = td.cellIndex;
    switch (e.key) {
      case 'ArrowLeft': c--; break;
      case 'ArrowRight': c++; break;
      case 'ArrowUp': r--; break;
      case 'ArrowDown': r++; break;
      case 'Home': c = 1; break;
      case 'End': c = 1e6; break;
      default: return;
    }
    e.preventDefault();
    const next = cellAt(cell.closest('table'), r, c);
    if (next) {
      if (next.tagName !== 'A') next.tabIndex = -1;
      rove(next);
      next.focus();
    }
  });

  // Logs: open at the tail (or at the line a #LN link names), load earlier
  // parts on demand, follow live. Each line is a span with a link to itself
  // whose number is drawn by CSS, so Ctrl-F and copy see only the log text.
  const log = document.getElementById('log');
  const logLines = function (lines) {
    const frag = document.createDocumentFragment();
    lines.forEach(function (l) {
      const span = document.createElement('span');
      span.id = 'L' + l.line_number;
      const a = document.createElement('a');
      a.className = 'ln';
      a.href = log.dataset.link + l.line_number + '#L' + l.line_number;
      a.dataset.n = l.line_number;
      a.setAttribute('aria-label', 'line ' + l.line_number);
      span.appendChild(a);
      span.appendChild(document.createTextNode(l.line + '\n'));
      frag.appendChild(span);
    });
    return frag;
  };
  if (log) {
    const target = location.hash && document.getElementById(location.hash.slice(1));
    if (target && log.contains(target)) log.scrollTop = target.offsetTop - log.offsetTop - log.clientHeight / 3;
    else log.scrollTop = log.scrollHeight;
    const mapq = log.dataset.map ? '&' + log.dataset.map : '';
    const earlier = document.getElementById('log-earlier');
    if (earlier) {
      earlier.addEventListener('click', async function () {
        earlier.disabled = true;
        try {
          const page = await api('GET', log.dataset.api.replace(/^\/api\/v1/, '') + '?limit=2000&before=' + enc(earlier.dataset.before) + mapq);
          const before = log.scrollHeight;
          log.insertBefore(logLines(page.content), log.firstChild);
          log.scrollTop += log.scrollHeight - before;
          if (page.previous_token) earlier.dataset.before = page.previous_token;
          else earlier.remove();
        } catch (err) {
          flash(err.message, true);
        } finally {
          earlier.disabled = false;
        }
      });
    }
    if (log.dataset.follow) {
      const status = document.getElementById('log-status');
      const es = new EventSource(log.dataset.api + '?token=' + enc(log.dataset.follow) + mapq);
      let pending = [];
      let scheduled = false;
      const flush = function () {
        scheduled = false;
        const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 30;
        log.appendChild(logLines(pending));
        pending = [];
        if (atEnd) log.scrollTop = log.scrollHeight;
      };
      es.addEventListener('log', function (e) {
        pending.push(JSON.parse(e.data));
        if (!scheduled) { scheduled = true; requestAnimationFrame(flush); }
      });
      es.addEventListener('end', function (e) {
        es.close();
        if (pending.length) flush();
        const st = JSON.parse(e.data).state;
        status.textContent = 'try ended: ' + st;
        status.dataset.ended = st;
      });
      window.addEventListener('pagehide', function () { es.close(); });
    }
  }
})();
