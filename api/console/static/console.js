// ticketflow console: progressive enhancement only — every page works without this file.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // Reply / note tabs: show one form at a time.
  var tabs = document.querySelectorAll(".tab[data-tab]");
  function select(id) {
    tabs.forEach(function (tab) {
      var on = tab.dataset.tab === id;
      tab.setAttribute("aria-selected", on ? "true" : "false");
      var panel = document.getElementById(tab.dataset.tab);
      if (panel) { panel.hidden = !on; }
    });
  }
  tabs.forEach(function (tab) {
    tab.addEventListener("click", function (event) { event.preventDefault(); select(tab.dataset.tab); });
  });
  if (tabs.length) {
    var drafted = document.querySelector(".tabpanel[data-selected]");
    var wanted = location.hash === "#note-form" || document.querySelector("#note-form .field-error") ||
      (drafted && drafted.id === "note-form") ? "note-form" : "reply-form";
    select(wanted);
  }

  // Dashboard charts: plotly.js draws each figure from the JSON beside it (the table below it has the same numbers).
  document.querySelectorAll("[data-figure]").forEach(function (el) {
    var source = document.getElementById(el.dataset.figure);
    if (!window.Plotly || !source) { return; }
    var figure = JSON.parse(source.textContent);
    if (!figure.data.length) { return; }
    window.Plotly.newPlot(el, figure.data, figure.layout, { displayModeBar: false, responsive: true });
  });

  // Auditor's as-of slider: say which version and instant it points at while it moves; show it when let go.
  document.querySelectorAll("input[type=range][data-autosubmit]").forEach(function (slider) {
    var shown = document.getElementById(slider.getAttribute("aria-describedby"));
    var names = JSON.parse(slider.dataset.labels || "[]");
    slider.addEventListener("input", function () {
      if (shown && names[slider.value - 1]) { shown.textContent = names[slider.value - 1]; }
    });
    slider.addEventListener("change", function () { slider.form.submit(); });
  });

  // A saved reply chosen from the list goes into the composer at once.
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { if (select.value) { select.form.submit(); } });
  });

  // Actions that cannot be undone ask first.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
    });
  });

  // Admin forms: show only the fields of the chosen role (hidden ones are not sent); everything shows without this.
  document.querySelectorAll("form[data-role-form]").forEach(function (form) {
    var role = form.querySelector("select[name=role]");
    function show() {
      form.querySelectorAll("[data-roles]").forEach(function (part) {
        var on = part.dataset.roles.split(" ").indexOf(role.value) >= 0;
        part.hidden = !on;
        part.querySelectorAll("input, select, textarea").forEach(function (field) { field.disabled = !on; });
      });
    }
    if (role) { role.addEventListener("change", show); show(); }
  });

  // Secrets shown once: a button copies them.
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var source = document.getElementById(button.dataset.copy);
    if (!source || !navigator.clipboard) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(source.textContent.trim()).then(function () { button.textContent = button.dataset.copied; });
    });
  });

  // SLA countdowns: time left until each target (the due time already counts business hours only).
  function pad(n) { return n < 10 ? "0" + n : "" + n; }
  function tick() {
    document.querySelectorAll(".countdown[data-due]").forEach(function (el) {
      var left = Math.round((Date.parse(el.dataset.due) - Date.now()) / 1000);
      var abs = Math.abs(left), h = Math.floor(abs / 3600), m = Math.floor((abs % 3600) / 60), s = abs % 60;
      var text = (h > 0 ? h + ":" + pad(m) : m) + ":" + pad(s);
      el.textContent = (left >= 0 ? el.dataset.left : el.dataset.overdue).replace("{t}", text);
      el.classList.toggle("overdue", left < 0);
    });
  }
  if (document.querySelector(".countdown[data-due]")) { tick(); setInterval(tick, 1000); }

  // Queues: when the log moves, fetch this queue's table again (new tickets appear without a reload).
  var holder = document.getElementById("queue-table");
  if (holder && window.EventSource) {
    var shown = parseInt(holder.dataset.position || "0", 10);
    var source = new EventSource(holder.dataset.live);
    source.addEventListener("position", function (event) {
      var position = parseInt(event.data, 10);
      if (position <= shown) { return; }
      shown = position;
      var url = new URL(location.href);
      url.searchParams.set("fragment", "1");
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (html === null) { return; }
          holder.innerHTML = html;
          var note = document.getElementById("live-note");
          if (note) { note.hidden = false; }
          var fresh = document.querySelector("#fresh-counts #queue-counts"), old = document.querySelector(".queue-list #queue-counts");
          if (fresh && old) { old.innerHTML = fresh.innerHTML; }
        });
    });
  }
})();
