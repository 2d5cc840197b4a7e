// ContextFS UI: progressive enhancement only; every page works without this script.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Forms that change the repository ask first.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
  // "/" focuses the page's search or first filter, as on code hosts.
  document.addEventListener("keydown", (event) => {
    const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement?.tagName);
    if (event.key === "/" && !typing) {
      const field = document.querySelector("input[type=search], form.filters input");
      if (field) { event.preventDefault(); field.focus(); }
    }
  });
});
