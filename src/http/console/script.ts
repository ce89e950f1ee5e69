// The console's script, served as /console.js (same origin; the CSP allows nothing inline). Plain DOM:
// every value from the server is set as text, never as HTML.
export const CONSOLE_JS = String.raw`'use strict';
(function () {
  var API = '/api/v1';
  var csrf = '';
  var $ = function (id) { return document.getElementById(id); };
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'text') node.textContent = attrs[k];
      else if (k.indexOf('on') === 0) node.addEventListener(k.slice(2), attrs[k]);
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return node;
  }
  function call(method, path, body) {
    var headers = { accept: 'application/json' };
    if (method !== 'GET') { headers['content-type'] = 'application/json'; headers['x-csrf-token'] = csrf; }
    return fetch(API + path, { method: method, headers: headers, body: method === 'GET' ? undefined : JSON.stringify(body || {}), credentials: 'same-origin' })
      .then(function (r) { return r.json().then(function (data) { return { ok: r.ok, status: r.status, data: data }; }); });
  }
  function notice(text, bad) { var n = $('notice'); n.textContent = text; n.className = bad ? 'error' : 'ok'; }
  function table(target, headers, rows) {
    var t = $(target); t.textContent = '';
    t.appendChild(el('tr', {}, headers.map(function (h) { return el('th', { text: h }); })));
    rows.forEach(function (cells) { t.appendChild(el('tr', {}, cells.map(function (c) { return typeof c === 'string' ? el('td', { text: c }) : el('td', {}, [c]); }))); });
    if (rows.length === 0) t.appendChild(el('tr', {}, [el('td', { text: 'nothing here', colspan: String(headers.length) })]));
  }
  function age(s) { return s < 120 ? s + 's' : s < 7200 ? Math.round(s / 60) + 'm' : s < 172800 ? Math.round(s / 3600) + 'h' : Math.round(s / 86400) + 'd'; }
  function done(r, what) { if (r.ok) notice(what); else notice(r.data.error || ('HTTP ' + r.status), true); return r; }

  function showApp(who) {
    $('login-view').hidden = true; $('app-view').hidden = false; $('logout').hidden = false;
    $('who').textContent = 'logged in as ' + who;
    show('status');
  }
  function show(tab) {
    Array.prototype.forEach.call(document.querySelectorAll('nav button'), function (b) { b.classList.toggle('active', b.dataset.tab === tab); });
    Array.prototype.forEach.call(document.querySelectorAll('.tab'), function (t) { t.hidden = t.id !== 'tab-' + tab; });
    ({ status: loadStatus, queue: loadQueue, users: loadUsers, bans: loadBans, dns: loadDkim })[tab]();
  }

  function loadStatus() {
    call('GET', '/status').then(function (r) {
      var s = r.data, box = $('tab-status'); box.textContent = '';
      box.appendChild(el('p', { text: 'Replica ' + s.replica + ' (ROLE=' + s.role + ', ' + s.hostname + '): ' + (s.ready ? 'ready' : 'NOT READY'), class: s.ready ? 'ok' : 'bad', id: 'status-line' }));
      s.failing.concat(s.degraded).forEach(function (f) { box.appendChild(el('p', { text: f, class: 'bad' })); });
      var t = el('table', { id: 'daemons-table' }); box.appendChild(t);
      t.appendChild(el('tr', {}, ['Daemon', 'State', 'Restarts'].map(function (h) { return el('th', { text: h }); })));
      Object.keys(s.daemons).forEach(function (d) { t.appendChild(el('tr', {}, [el('td', { text: d }), el('td', { text: s.daemons[d].state }), el('td', { text: String(s.daemons[d].restarts || 0) })])); });
      var q = s.queue;
      box.appendChild(el('p', { text: 'Queue: ' + q.total + ' (' + Object.keys(q.byState).map(function (k) { return k + ' ' + q.byState[k]; }).join(', ') + '), oldest ' + age(q.oldestSeconds) }));
      box.appendChild(el('p', { text: 'Bans: ' + s.bans + '; suspended: ' + (s.suspendedUsers.join(', ') || 'none') + '; shared state: ' + s.sharedState + ' (the queue shown is this replica\'s)' }));
    });
  }

  function queueQuery() {
    var form = new FormData($('queue-filter')), params = new URLSearchParams();
    form.forEach(function (v, k) { if (v) params.set(k, v); });
    return params;
  }
  function loadQueue() {
    call('GET', '/queue?' + queueQuery()).then(function (r) {
      if (!r.ok) return done(r);
      table('queue-table', ['', 'ID', 'State', 'Age', 'Size', 'Sender', 'Recipients', 'Last deferral', ''], r.data.messages.map(function (m) {
        return [el('input', { type: 'checkbox', value: m.id, class: 'pick', 'aria-label': 'select ' + m.id }), m.id, m.state, age(m.ageSeconds), String(m.size), m.sender || '<>',
          m.recipients.map(function (x) { return x.address; }).join(', '), m.reason || '', el('button', { text: 'Headers', onclick: function () { headers(m.id); } })];
      }));
    });
  }
  function headers(id) {
    call('GET', '/queue/' + encodeURIComponent(id)).then(function (r) { var p = $('queue-headers'); p.hidden = false; p.textContent = r.ok ? r.data.headers : r.data.error; });
  }
  function queueAction(action) {
    var ids = Array.prototype.map.call(document.querySelectorAll('.pick:checked'), function (c) { return c.value; });
    if (ids.length === 0) return notice('select one or more messages first', true);
    if (action === 'delete' && !window.confirm('Delete ' + ids.length + ' message(s)? This cannot be undone.')) return;
    call('POST', '/queue/' + action, { ids: ids }).then(function (r) { done(r, action + ': ' + (r.data.ids || []).join(', ')); loadQueue(); });
  }

  function loadUsers() {
    call('GET', '/users').then(function (r) {
      table('users-table', ['User', 'State', 'Sent (hour / day)', 'Last login', 'Aliases', ''], r.data.map(function (u) {
        var action = u.suspended
          ? el('button', { text: 'Unsuspend and release held mail', onclick: function () { call('POST', '/users/' + encodeURIComponent(u.address) + '/unsuspend', { held: 'release' }).then(function (x) { done(x, 'unsuspended ' + u.address); loadUsers(); }); } })
          : el('button', { text: 'Suspend', onclick: function () { var why = window.prompt('Why suspend ' + u.address + '?'); if (why) call('POST', '/users/' + encodeURIComponent(u.address) + '/suspend', { reason: why }).then(function (x) { done(x, 'suspended ' + u.address); loadUsers(); }); } });
        return [u.address, u.suspended ? 'SUSPENDED: ' + u.suspension.reason : 'active', u.sent ? u.sent.messagesPerHour + ' / ' + u.sent.recipientsPerDay : '-', u.lastLogin ? new Date(u.lastLogin).toISOString() : '-', u.aliases.join(', '), action];
      }));
    });
  }

  function loadBans() {
    call('GET', '/bans').then(function (r) {
      table('bans-table', ['Address', 'Remaining', 'Ports', ''], r.data.map(function (b) {
        return [b.address, age(b.remainingSeconds), b.ports.join(' '), el('button', { text: 'Lift', 'data-lift': b.address, onclick: function () { call('DELETE', '/bans/' + encodeURIComponent(b.address)).then(function (x) { done(x, 'lifted the ban on ' + b.address); loadBans(); }); } })];
      }));
    });
  }

  function loadDkim() {
    call('GET', '/dns').then(function (r) {
      if (!r.ok) return done(r);
      table('dns-table', ['Name', 'Type', 'Value', 'In DNS'], r.data.map(function (d) {
        return [d.name, d.type, el('code', { text: d.value }), el('span', { text: d.status + ': ' + d.detail, class: d.status === 'ok' ? 'ok' : 'bad' })];
      }));
    });
    call('GET', '/dkim').then(function (r) {
      var box = $('dkim-list'); box.textContent = '';
      if (!r.ok) return done(r);
      r.data.forEach(function (d) {
        box.appendChild(el('h3', { text: d.domain + (d.keysFrom === 'DKIM_KEY_DIR' ? ' (keys from DKIM_KEY_DIR: read-only)' : '') }));
        var t = el('table'); box.appendChild(t);
        t.appendChild(el('tr', {}, ['Selector', 'Role', 'Published?', 'Record to publish'].map(function (h) { return el('th', { text: h }); })));
        d.selectors.forEach(function (s) {
          t.appendChild(el('tr', {}, [el('td', { text: s.selector }), el('td', { text: s.role }), el('td', { text: s.check ? s.check.status + ': ' + s.check.detail : '-', class: s.check && s.check.status === 'ok' ? 'ok' : 'bad' }), el('td', {}, [el('code', { text: s.record ? s.record.name + ' TXT ' + s.record.value : '' })])]));
        });
        if (!d.rotatable) return;
        var step = function (name, body) { return function () { call('POST', '/dkim/' + encodeURIComponent(d.domain) + '/' + name, body || {}).then(function (x) { done(x, name + ': ' + JSON.stringify(x.data.switched === undefined ? 'done' : (x.data.switched ? 'switched' : 'not published yet'))); loadDkim(); }); }; };
        box.appendChild(el('div', { class: 'actions' }, [el('button', { text: 'Start rotation', onclick: step('start') }), el('button', { text: 'Verify and switch', onclick: step('verify') }), el('button', { text: 'Retire old', onclick: step('retire') }), el('button', { text: 'Cancel rotation', onclick: step('cancel') })]));
      });
    });
  }

  document.addEventListener('DOMContentLoaded', function () {
    $('login-form').addEventListener('submit', function (event) {
      event.preventDefault();
      var token = $('login-token').value;
      var body = token ? { token: token } : { user: $('login-user').value, password: $('login-password').value };
      call('POST', '/login', body).then(function (r) {
        $('login-password').value = ''; $('login-token').value = '';
        if (!r.ok) { $('login-error').textContent = r.data.error || 'login refused'; return; }
        $('login-error').textContent = ''; csrf = r.data.csrf; showApp(r.data.who);
      });
    });
    $('logout').addEventListener('click', function () { call('POST', '/logout').then(function () { window.location.reload(); }); });
    Array.prototype.forEach.call(document.querySelectorAll('nav button'), function (b) { b.addEventListener('click', function () { show(b.dataset.tab); }); });
    $('queue-filter').addEventListener('submit', function (event) { event.preventDefault(); loadQueue(); });
    Array.prototype.forEach.call(document.querySelectorAll('[data-queue-action]'), function (b) { b.addEventListener('click', function () { queueAction(b.dataset.queueAction); }); });
    $('ban-form').addEventListener('submit', function (event) {
      event.preventDefault();
      var f = new FormData(event.target);
      call('POST', '/bans', { address: f.get('address'), duration: f.get('duration'), reason: f.get('reason') }).then(function (r) { done(r, 'banned ' + f.get('address')); loadBans(); });
    });
    call('GET', '/session').then(function (r) { if (r.ok) { csrf = r.data.csrf; showApp(r.data.who); } });
  });
})();
`;
