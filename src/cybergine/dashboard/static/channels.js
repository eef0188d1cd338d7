// Channels pages: the chat bubble's live preview follows its appearance form before it
// is saved. The preview is the real widget in a frame (/channels/widget/<id>/preview);
// a change reloads the frame with the form's values in the query. Event delegation on
// document: pages arrive by boosted navigation.
(function () {
  "use strict";

  var DELAY_MS = 250; // typing a title reloads once, when the typing pauses
  var timer = null;

  function previewQuery(form) {
    var query = new URLSearchParams();
    ["title", "colour", "avatar_url", "language", "privacy_notice_url"].forEach(function (name) {
      var field = form.elements.namedItem(name);
      if (field && field.value) query.set(name, field.value);
    });
    var position = form.querySelector('input[name="position"]:checked');
    if (position) query.set("position", position.value);
    var consent = form.elements.namedItem("ask_consent");
    if (consent && consent.checked) query.set("ask_consent", "on");
    return query.toString();
  }

  function refreshPreview(form) {
    var frame = document.querySelector("iframe[data-widget-preview]");
    if (!frame) return;
    var url = frame.getAttribute("data-widget-preview") + "?" + previewQuery(form);
    if (frame.getAttribute("src") !== url) frame.setAttribute("src", url);
  }

  function changed(event) {
    var form = event.target.closest && event.target.closest("form[data-widget-appearance]");
    if (!form) return;
    window.clearTimeout(timer);
    timer = window.setTimeout(function () {
      refreshPreview(form);
    }, DELAY_MS);
  }

  document.addEventListener("input", changed);
  document.addEventListener("change", changed);
})();
