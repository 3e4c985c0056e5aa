// mxguard console: small helpers, no dependencies. Loaded from our own
// origin only (the CSP forbids inline script).
(function () {
  "use strict";
  // "Select all" checkboxes: <input type=checkbox data-select-all="NAME">.
  document.querySelectorAll("input[data-select-all]").forEach(function (all) {
    all.addEventListener("change", function () {
      var name = all.getAttribute("data-select-all");
      document.querySelectorAll('input[type=checkbox][name="' + name + '"]').forEach(function (c) {
        c.checked = all.checked;
      });
    });
  });
  // Confirmation before destructive buttons: data-confirm="question".
  document.querySelectorAll("[data-confirm]").forEach(function (b) {
    b.addEventListener("click", function (e) {
      if (!window.confirm(b.getAttribute("data-confirm"))) e.preventDefault();
    });
  });
  // Dashboard auto-refresh: <div id=dash data-refresh=SECONDS>; fetches the
  // same page and swaps the dashboard in place (same origin, our own HTML).
  var dash = document.getElementById("dash");
  if (dash) {
    var secs = parseInt(dash.getAttribute("data-refresh"), 10) || 30;
    setInterval(function () {
      if (document.hidden) return;
      fetch(window.location.href, { credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
        .then(function (text) {
          var doc = new DOMParser().parseFromString(text, "text/html");
          var fresh = doc.getElementById("dash");
          if (fresh) dash.replaceChildren.apply(dash, Array.from(fresh.childNodes));
        })
        .catch(function () { /* keep the old numbers; try again next time */ });
    }, secs * 1000);
  }
})();
