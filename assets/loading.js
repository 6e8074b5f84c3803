// sleeper loading page: follows the wake over /.sleeper/events and reloads
// the page (same URL) when the app is ready, or shows why the wake failed.
// Text only ever goes in through textContent, never as HTML.
(function () {
  "use strict";

  var root = document.getElementById("sleeper");
  if (!root) {
    return;
  }
  var byId = function (id) { return document.getElementById(id); };
  var stepEl = byId("sleeper-step");
  var elapsedEl = byId("sleeper-elapsed");
  var bar = byId("sleeper-progress");
  var errBox = byId("sleeper-error");
  var errText = byId("sleeper-error-text");
  var retry = byId("sleeper-retry");

  // The server renders how long the wake has been running; the clock here
  // continues from that, so a skewed client clock does not matter.
  var base = Number(root.getAttribute("data-elapsed-ms")) || 0;
  var estimate = Number(root.getAttribute("data-estimate-ms")) || 0;
  var t0 = performance.now();
  var floor = Number(bar.value) || 0;
  var finished = false;

  // How far along each step is, at least, on the progress bar.
  var stepFloor = {
    waking: 5, dependency_waking: 15, dependency_ready: 35,
    started: 45, waiting_ready: 60, ready: 100
  };

  retry.addEventListener("click", function () {
    // A reload asks sleeper again, which starts a new wake.
    retry.disabled = true;
    location.reload();
  });

  function elapsed() { return base + (performance.now() - t0); }

  function render() {
    if (finished) {
      return;
    }
    var ms = elapsed();
    elapsedEl.textContent = (ms / 1000).toFixed(1) + " s elapsed";
    // With an estimate the bar follows the clock up to 95 %; without one
    // it creeps towards 90 % so that it never looks done before it is.
    var guess = estimate > 0 ? Math.min(95, ms / estimate * 100) : 90 * (1 - Math.exp(-ms / 8000));
    bar.value = Math.max(floor, guess);
  }

  function fail(message) {
    finished = true;
    root.setAttribute("data-state", "error");
    stepEl.textContent = "Could not start it";
    errText.textContent = message;
    errBox.hidden = false;
  }

  if (root.getAttribute("data-state") === "error") {
    finished = true;
  }
  if (!window.EventSource) {
    // No live progress: behave like the no-script fallback.
    setTimeout(function () { location.reload(); }, 2000);
    return;
  }
  var timer = setInterval(render, 200);
  render();

  function parse(ev) {
    try {
      return JSON.parse(ev.data);
    } catch (e) {
      return null;
    }
  }

  function step(ev) {
    var d = parse(ev);
    if (!d) {
      return;
    }
    base = d.elapsed_ms || 0;
    t0 = performance.now();
    stepEl.textContent = d.message;
    floor = Math.max(floor, stepFloor[d.type] || 0);
    render();
  }

  var es = new EventSource("/.sleeper/events");
  ["waking", "dependency_waking", "dependency_ready", "started", "waiting_ready"].forEach(function (t) {
    es.addEventListener(t, step);
  });

  es.addEventListener("ready", function (ev) {
    es.close();
    step(ev);
    finished = true;
    clearInterval(timer);
    bar.value = 100;
    // Same URL: the user lands where they asked, now served by the app.
    location.reload();
  });

  // "error" is both the wake's error event (a MessageEvent with data) and
  // EventSource's own connection error (no data): tell them apart.
  es.addEventListener("error", function (ev) {
    if (typeof ev.data !== "string") {
      if (es.readyState === EventSource.CLOSED) {
        // The browser gave up reconnecting: fall back to reloading.
        setTimeout(function () { location.reload(); }, 2000);
      }
      return;
    }
    es.close();
    clearInterval(timer);
    var d = parse(ev);
    fail(d && d.message ? d.message : "the wake failed");
    retry.focus();
  });
}());
