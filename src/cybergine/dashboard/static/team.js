// Team page: a member's role <select> changes nothing by itself. The form's "Change role"
// button does, after a confirmation naming the person and the role chosen (app.js asks
// it from the form's data-confirm, which this keeps in step with the select).
(function () {
  "use strict";

  function describe(form) {
    var select = form.querySelector('select[name="role"]');
    var option = select && select.options[select.selectedIndex];
    var template = form.getAttribute("data-confirm-template");
    if (!option || !template) return;
    form.setAttribute("data-confirm", template.replace("{role}", option.textContent.trim()));
  }

  function describeAll() {
    document.querySelectorAll("form[data-role-form]").forEach(describe);
  }

  document.addEventListener("change", function (event) {
    var form = event.target.closest && event.target.closest("form[data-role-form]");
    if (form) describe(form);
  });
  // A browser may restore a select's earlier choice (Back, a boosted page): describe
  // what is selected, not what the server rendered.
  document.addEventListener("DOMContentLoaded", describeAll);
  document.addEventListener("htmx:load", describeAll);
})();
