// The "Try it" panel on an assistant's page (templates/assistant_try.html): starting the
// test chat over, and keeping the text box focused and the newest answer in view. The
// chat's turns live only in the page: starting over is forgetting them here.
(function () {
  "use strict";

  function focusText(panel) {
    var input = panel && panel.querySelector("[data-try-text]");
    if (input) input.focus();
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-try-reset]");
    if (!button) return;
    var panel = button.closest("[data-try-panel]");
    var log = panel && panel.querySelector("[data-try-log]");
    if (!log) return;
    // The turns go, with the hidden inputs that would have sent them again.
    log.replaceChildren();
    var note = document.createElement("p");
    note.className = "muted try-empty";
    note.setAttribute("data-try-empty", "");
    note.textContent = "New test chat: earlier questions are forgotten.";
    log.appendChild(note);
    focusText(panel);
  });

  // After an answer (or a refusal) arrives: the hint goes, the text box has the focus
  // again (it was swapped for an empty one), and the log shows its end.
  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail && event.detail.target;
    var panel = target && target.closest && target.closest("[data-try-panel]");
    if (!panel) return;
    var log = panel.querySelector("[data-try-log]");
    if (log && log.querySelector("[data-try-turn]")) {
      var hint = log.querySelector("[data-try-empty]");
      if (hint) hint.remove();
      log.scrollTop = log.scrollHeight;
    }
    focusText(panel);
  });
})();
