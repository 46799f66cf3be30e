// shared-db studio: the little the pages need beyond HTML forms.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Empty filter inputs would only clutter the address; the server ignores them anyway.
  const filters = document.getElementById("filters");
  if (filters) {
    filters.addEventListener("submit", () => {
      for (const field of filters.querySelectorAll("input, select")) {
        if (field.value === "" || (field.type === "checkbox" && !field.checked)) {
          field.disabled = true;
        }
      }
    });
  }
  // Destructive forms ask first.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
});
