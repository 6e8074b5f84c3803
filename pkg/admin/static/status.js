// The status page's script: it refreshes the page and drives the wake and
// sleep buttons through the admin API. The token is asked for on the page
// (no window.prompt) once, and kept in sessionStorage: this tab only, gone
// when it closes, never in a cookie, so no other site can use it.
(function () {
  'use strict';
  var KEY = 'sleeper.adminToken';
  var form = document.getElementById('token-form');
  var input = document.getElementById('token');
  var msg = document.getElementById('msg');
  var pending = null;
  var busy = false;

  function stored() {
    try { return sessionStorage.getItem(KEY) || ''; } catch (e) { return ''; }
  }
  function store(t) {
    try {
      if (t) { sessionStorage.setItem(KEY, t); } else { sessionStorage.removeItem(KEY); }
    } catch (e) { /* storage off: the token is asked for every time */ }
  }
  function say(text) { msg.textContent = text; }
  function ask(action, why) {
    pending = action;
    form.hidden = false;
    input.focus();
    say(why || ('The admin token is needed to ' + action.verb + ' ' + action.name + '.'));
  }

  function run(action, token) {
    if (!token) { ask(action); return; }
    busy = true;
    say((action.verb === 'wake' ? 'Waking ' : 'Putting to sleep ') + action.name + '…');
    fetch('/api/containers/' + encodeURIComponent(action.name) + '/' + action.verb, {
      method: 'POST',
      headers: { 'Authorization': 'Bearer ' + token },
      cache: 'no-store'
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        busy = false;
        if (r.status === 401) {
          store('');
          ask(action, 'Wrong admin token. Enter it again to ' + action.verb + ' ' + action.name + '.');
          return;
        }
        if (!r.ok) { say(body.error || ('Failed: HTTP ' + r.status)); return; }
        say(action.name + ' is ' + body.state + '.');
        location.reload();
      });
    }).catch(function (e) {
      busy = false;
      say('The request failed: ' + e);
    });
  }

  document.addEventListener('click', function (ev) {
    var b = ev.target.closest('button[data-action]');
    if (b) { run({ verb: b.dataset.action, name: b.dataset.name }, stored()); }
  });
  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    var t = input.value.trim();
    if (!t) { return; }
    store(t);
    input.value = '';
    form.hidden = true;
    var a = pending;
    pending = null;
    if (a) { run(a, t); } else { say(''); }
  });
  // The refresh the noscript meta tag does without script, but not while
  // the token is being typed or an action runs.
  setInterval(function () {
    if (!busy && form.hidden) { location.reload(); }
  }, 5000);
})();
