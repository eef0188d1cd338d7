// The knowledge pages: uploads with a progress bar per file, files dropped on the upload
// area, the progress of an import, and focus kept where it was when a list refreshes
// itself. Without this script the same forms post as plain forms.
(function () {
  "use strict";

  var PARALLEL_UPLOADS = 2; // as many as the server reads at once by default

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function refreshLists() {
    document.body.dispatchEvent(new CustomEvent("knowledge-refresh"));
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text; // names come from the uploader: text, never markup
    return node;
  }

  // --- Uploads, one request a file -------------------------------------------------

  function outcomeOf(xhr) {
    var data = null;
    try {
      data = JSON.parse(xhr.responseText);
    } catch (error) {
      data = null;
    }
    if (data && data.results && data.results.length) return data.results[0];
    if (data && (data.error || data.detail)) return { accepted: false, reason: data.error || data.detail };
    if (xhr.status === 413) return { accepted: false, reason: "This file is too large." };
    return { accepted: false, reason: "Not uploaded (the server answered " + xhr.status + "). Reload the page and try again." };
  }

  function uploadOne(form, file, row, done) {
    var bar = row.querySelector("progress");
    var outcome = row.querySelector(".upload-outcome");
    var data = new FormData();
    data.append("csrf_token", csrfToken());
    var collection = form.querySelector('[name="collection"]');
    if (collection) data.append("collection", collection.value);
    data.append("file", file, file.name);
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.getAttribute("action"));
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("X-CSRF-Token", csrfToken());
    xhr.upload.addEventListener("progress", function (event) {
      if (event.lengthComputable) bar.value = Math.round((event.loaded / event.total) * 100);
    });
    xhr.upload.addEventListener("load", function () {
      bar.value = 100;
      outcome.textContent = "Reading the file…";
    });
    xhr.addEventListener("load", function () {
      var wait = parseInt(xhr.getResponseHeader("Retry-After") || "", 10);
      if ((xhr.status === 429 || xhr.status === 503) && wait > 0) {
        // The organisation's share of file reading is used up for now: wait as told,
        // then send the same file again.
        outcome.textContent = "Waiting " + wait + " s: many files are being read. It goes on by itself.";
        window.setTimeout(function () { uploadOne(form, file, row, done); }, wait * 1000);
        return;
      }
      var result = outcomeOf(xhr);
      row.classList.add(result.accepted ? "upload-accepted" : "upload-refused");
      row.setAttribute("data-outcome", result.accepted ? "accepted" : "refused");
      outcome.textContent = result.accepted ? "Accepted" : "Refused: " + (result.reason || "");
      if (result.accepted && result.url) {
        var link = element("a", "upload-link", "Open");
        link.href = result.url;
        outcome.appendChild(document.createTextNode(" "));
        outcome.appendChild(link);
      }
      done(result.accepted);
    });
    xhr.addEventListener("error", function () {
      row.classList.add("upload-refused");
      row.setAttribute("data-outcome", "refused");
      outcome.textContent = "Not uploaded: the connection failed. Try again.";
      done(false);
    });
    xhr.send(data);
  }

  function uploadAll(form, files) {
    var list = form.querySelector("[data-upload-results]");
    var button = form.querySelector('button[type="submit"]');
    list.textContent = "";
    var queue = [];
    Array.prototype.forEach.call(files, function (file) {
      var row = element("li", "upload-file");
      row.setAttribute("data-testid", "upload-file");
      row.appendChild(element("span", "upload-name", file.name));
      var bar = element("progress");
      bar.max = 100;
      bar.value = 0;
      bar.setAttribute("aria-label", "Upload of " + file.name);
      row.appendChild(bar);
      row.appendChild(element("span", "upload-outcome", "Waiting…"));
      list.appendChild(row);
      queue.push({ file: file, row: row });
    });
    var running = 0;
    if (button) button.disabled = true;
    function next() {
      if (!queue.length) {
        if (running === 0) {
          if (button) button.disabled = false;
          form.querySelector('input[type="file"]').value = "";
        }
        return;
      }
      var job = queue.shift();
      running += 1;
      job.row.querySelector(".upload-outcome").textContent = "Uploading…";
      uploadOne(form, job.file, job.row, function () {
        running -= 1;
        refreshLists();
        next();
      });
    }
    for (var i = 0; i < PARALLEL_UPLOADS; i += 1) next();
  }

  // A form marked data-upload-on-choose sends the files as soon as they are chosen.
  document.addEventListener("change", function (event) {
    var input = event.target;
    if (!input.matches || !input.matches('form[data-upload-on-choose] input[type="file"]')) return;
    if (input.files && input.files.length && input.form.requestSubmit) input.form.requestSubmit();
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("form[data-upload]")) return;
    if (!window.FormData || !window.XMLHttpRequest) return; // the plain form does it
    var input = form.querySelector('input[type="file"]');
    if (!input || !input.files || !input.files.length) return; // the server says what is missing
    event.preventDefault();
    uploadAll(form, input.files);
  });

  // --- Dropping files on the upload area --------------------------------------------

  function dropzoneOf(event) {
    return event.target.closest ? event.target.closest("[data-dropzone]") : null;
  }

  ["dragenter", "dragover"].forEach(function (name) {
    document.addEventListener(name, function (event) {
      var zone = dropzoneOf(event);
      if (!zone) return;
      event.preventDefault();
      zone.classList.add("dropzone-active");
    });
  });

  document.addEventListener("dragleave", function (event) {
    var zone = dropzoneOf(event);
    if (zone && !zone.contains(event.relatedTarget)) zone.classList.remove("dropzone-active");
  });

  document.addEventListener("drop", function (event) {
    var zone = dropzoneOf(event);
    if (!zone) return;
    event.preventDefault();
    zone.classList.remove("dropzone-active");
    var files = event.dataTransfer && event.dataTransfer.files;
    var form = zone.closest("form");
    if (!files || !files.length || !form) return;
    var input = form.querySelector('input[type="file"]');
    if (input) input.files = files; // what the person chose stays visible in the input
    if (form.requestSubmit) form.requestSubmit();
  });

  // --- The progress of an import (sent by HTMX) -------------------------------------

  function importProgress(event) {
    var form = event.target.closest ? event.target.closest("form[data-import]") : null;
    return form ? form.querySelector("[data-import-progress]") : null;
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var holder = importProgress(event);
    if (!holder) return;
    holder.hidden = false;
    var bar = holder.querySelector("progress");
    bar.value = 0;
    holder.removeAttribute("data-phase");
    holder.querySelector("label").textContent = "Sending the file";
  });

  document.addEventListener("htmx:xhr:progress", function (event) {
    var holder = importProgress(event);
    // HTMX reports the upload's progress, then the response's: only the first counts.
    if (!holder || !event.detail.lengthComputable || holder.getAttribute("data-phase")) return;
    var bar = holder.querySelector("progress");
    bar.value = Math.round((event.detail.loaded / event.detail.total) * 100);
    if (bar.value >= 100) {
      holder.setAttribute("data-phase", "importing");
      holder.querySelector("label").textContent = "Importing the rows";
      bar.removeAttribute("value"); // indeterminate while the server writes them
    }
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var holder = importProgress(event);
    if (holder) holder.hidden = true;
  });

  // --- Focus survives a list refreshing itself --------------------------------------

  var focusedId = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    var active = document.activeElement;
    focusedId = active && active.id && event.detail.target.contains(active) ? active.id : null;
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (!focusedId) return;
    var again = document.getElementById(focusedId);
    focusedId = null;
    if (again && document.activeElement !== again) again.focus();
  });
})();
