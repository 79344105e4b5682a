/* dmlbook: small fixes to the theme's scripts (loaded on every page).
 *
 * Sidebar toggles. pydata-sphinx-theme 0.17.1 and sphinx-book-theme 1.3.0 both
 * bind their sidebar handlers to the FIRST .primary-toggle / .secondary-toggle
 * of the page: pydata's own header buttons, which sphinx-book-theme hides
 * (pydata-sphinx-theme#2451, sphinx-book-theme#988). The buttons a reader sees
 * (the article header's ☰ and "On this page") had no handler, so on a phone
 * neither sidebar opened and on a laptop ☰ did not collapse the sidebar.
 * Here every other toggle forwards its click to the bound one, whose handlers
 * then do what the themes meant: a dialog below 992 px, a collapse above.
 */
(function () {
  "use strict";

  function forwardToggles(selector) {
    var buttons = Array.prototype.slice.call(document.querySelectorAll(selector));
    if (buttons.length < 2) return;
    var bound = buttons[0];
    buttons.slice(1).forEach(function (button) {
      if (button.dataset.dmlbookForwarded) return;
      button.dataset.dmlbookForwarded = "1";
      button.addEventListener("click", function (event) {
        event.preventDefault();
        event.stopPropagation();
        bound.click();
        button.blur();
      });
    });
  }

  /* Wide tables (five columns or more: the week table) read on a phone as one
   * card per row: each cell is labelled with its column's header (data-label),
   * which the phone layout of dmlbook.css shows above the cell's text. */
  function labelWideTables() {
    document.querySelectorAll("article table").forEach(function (table) {
      var heads = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
        return th.textContent.trim();
      });
      if (heads.length < 5) return;
      table.classList.add("dmlbook-wide-table");
      table.querySelectorAll("tbody tr").forEach(function (row) {
        Array.prototype.forEach.call(row.children, function (cell, i) {
          if (heads[i]) cell.setAttribute("data-label", heads[i]);
        });
      });
    });
  }

  function init() {
    forwardToggles(".primary-toggle");
    forwardToggles(".secondary-toggle");
    labelWideTables();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
