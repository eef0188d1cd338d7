// Dashboard behaviour that HTMX attributes do not cover. No inline scripts: the CSP
// allows only files from our origin.
(function () {
  "use strict";

  // Every HTMX request carries the CSRF token of the page.
  document.addEventListener("htmx:configRequest", function (event) {
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta) {
      event.detail.headers["X-CSRF-Token"] = meta.getAttribute("content");
    }
  });

  // An organisation scheduled for deletion is read-only (<main data-read-only>): the
  // server refuses its writes (423); its forms are shown disabled, but for the person's
  // own account and what an owner still does there (cancel the deletion, the export).
  var WRITABLE_WHEN_CLOSING = ["/account", "/settings/delete/cancel", "/settings/export"];
  function writable(action) {
    var path = action ? new URL(action, location.href).pathname : location.pathname;
    return WRITABLE_WHEN_CLOSING.some(function (prefix) {
      return path === prefix || path.indexOf(prefix + "/") === 0;
    });
  }
  function disableWrites(root) {
    var main = document.querySelector("main[data-read-only]");
    if (!main || !root || !root.querySelectorAll) return;
    var forms = [].slice.call(root.querySelectorAll('form[method="post"]'));
    if (root.matches && root.matches('form[method="post"]')) forms.push(root);
    forms.forEach(function (form) {
      if (!main.contains(form) || writable(form.getAttribute("action"))) return;
      form.setAttribute("aria-disabled", "true");
      form.title = "Read-only: this organisation is scheduled for deletion.";
      form.querySelectorAll("button, input, select, textarea").forEach(function (control) {
        control.disabled = true;
      });
    });
    ["hx-post", "hx-put", "hx-patch", "hx-delete"].forEach(function (verb) {
      root.querySelectorAll("[" + verb + "]").forEach(function (el) {
        if (main.contains(el) && !writable(el.getAttribute(verb))) el.setAttribute("disabled", "");
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    disableWrites(document);
  });
  document.addEventListener("htmx:load", function (event) {
    disableWrites(event.detail && event.detail.elt);
  });

  // Forms that ask for confirmation: <form data-confirm="Really?">.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var message = form.getAttribute && form.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // Copy buttons: <button data-copy="#selector">.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (source && navigator.clipboard) {
      navigator.clipboard.writeText(source.textContent.trim()).then(function () {
        button.textContent = "Copied";
      });
    }
  });

  // Forms that clear themselves once HTMX has sent them: <form data-reset-after>.
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (form.matches && form.matches("form[data-reset-after]") && event.detail.successful) {
      form.reset();
    }
  });

  // A success notice comes as ?notice=… on the page a form redirects to. Once shown, it
  // leaves the address bar, so reloading (or bookmarking) the page does not show it again;
  // after a boosted navigation too, where htmx has just pushed that address. A page kept
  // for the Back button is kept without its notice.
  function forgetNotice() {
    if (!window.history || !window.history.replaceState || !window.URLSearchParams) return;
    var query = new URLSearchParams(window.location.search);
    if (!query.has("notice")) return;
    query.delete("notice");
    var rest = query.toString();
    window.history.replaceState(
      window.history.state,
      "",
      window.location.pathname + (rest ? "?" + rest : "") + window.location.hash
    );
  }
  document.addEventListener("DOMContentLoaded", forgetNotice);
  document.addEventListener("htmx:load", forgetNotice);
  document.addEventListener("htmx:pushedIntoHistory", forgetNotice);
  document.addEventListener("htmx:beforeHistorySave", function (event) {
    var saved = event.detail && event.detail.historyElt;
    if (!saved) return;
    saved.querySelectorAll('.notice[role="status"]').forEach(function (notice) {
      notice.remove();
    });
  });

  // Selects that submit their form when changed: <select data-autosubmit>.
  document.addEventListener("change", function (event) {
    if (event.target.matches("select[data-autosubmit]")) {
      event.target.form.requestSubmit();
    }
  });

  // Keep the page's CSRF token current. A boosted navigation swaps the body but not the
  // <head>, so after signing in (or switching organisation) the <meta name="csrf-token">
  // would still hold the token of the page first loaded, and every later HTMX request
  // would be refused. A full page in a response carries the current token: take it.
  var csrfInResponse = /<meta name="csrf-token" content="([0-9a-f]+)">/;
  document.addEventListener("htmx:afterRequest", function (event) {
    var xhr = event.detail.xhr;
    var meta = document.querySelector('meta[name="csrf-token"]');
    var found = xhr && typeof xhr.responseText === "string" &&
      csrfInResponse.exec(xhr.responseText);
    if (meta && found) {
      meta.setAttribute("content", found[1]);
    }
  });

  // Live updates: a page holding <div data-live-events="/inbox/events"> listens to the
  // server's events (Server-Sent Events; the browser reconnects by itself). Each one
  // refreshes the page's parts marked data-live-refresh, through HTMX (their hx-trigger
  // includes "live-refresh"); a part with data-live-conversation="<id>" refreshes only
  // for its own conversation. Bursts are coalesced into one refresh.
  var live = null;
  var changed = {};
  var refreshTimer = null;

  function refreshParts() {
    var ids = changed;
    changed = {};
    refreshTimer = null;
    if (!window.htmx) return;
    document.querySelectorAll("[data-live-refresh]").forEach(function (part) {
      var own = part.getAttribute("data-live-conversation");
      if (!own || ids["*"] || ids[own]) {
        window.htmx.trigger(part, "live-refresh");
      }
    });
  }

  function scheduleRefresh(id) {
    changed[id || "*"] = true;
    if (refreshTimer === null) {
      refreshTimer = window.setTimeout(refreshParts, 250);
    }
  }

  function connectLive() {
    var holder = document.querySelector("[data-live-events]");
    var url = holder ? holder.getAttribute("data-live-events") : null;
    if (live && live.url === url) return;
    if (live) {
      live.source.close();
      live = null;
    }
    if (!url || !window.EventSource) return;
    var source = new EventSource(url);
    var opened = false;
    live = { url: url, source: source };
    source.addEventListener("open", function () {
      // Back after a dropped connection: something may have changed meanwhile.
      if (opened) scheduleRefresh(null);
      opened = true;
    });
    source.addEventListener("conversation", function (event) {
      var data;
      try {
        data = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      if (data.kind === "typing") return;
      scheduleRefresh(data.id);
    });
    source.addEventListener("resync", function () {
      scheduleRefresh(null);
    });
  }

  // On the first page, and after each HTMX swap (a boosted navigation brings a page that
  // may or may not want live updates; leaving the inbox closes the stream).
  document.addEventListener("DOMContentLoaded", connectLive);
  document.addEventListener("htmx:load", connectLive);
})();
