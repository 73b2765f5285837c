// The case form's one convenience: as many prior-therapy rows as needed. Without script the
// form still works (blank rows are offered and more appear after saving).
(function () {
  var button = document.getElementById("add-prior");
  if (!button) { return; }
  button.hidden = false;
  var hint = document.querySelector(".no-js-hint");
  if (hint) { hint.hidden = true; }
  button.addEventListener("click", function () {
    var rows = document.querySelectorAll("table.prior tr.prior-row");
    var last = rows[rows.length - 1];
    var next = rows.length;
    var copy = last.cloneNode(true);
    copy.querySelectorAll("[name]").forEach(function (el) {
      el.name = el.name.replace(/^prior_therapies\.\d+\./, "prior_therapies." + next + ".");
      if (el.tagName === "SELECT") { el.selectedIndex = 0; } else { el.value = ""; }
      var label = el.getAttribute("aria-label");
      if (label) { el.setAttribute("aria-label", label.replace(/prior therapy \d+/, "prior therapy " + (next + 1))); }
    });
    copy.querySelectorAll("[id]").forEach(function (el) {
      el.id = el.id.replace(/prior_therapies\.\d+\./, "prior_therapies." + next + ".");
    });
    copy.querySelectorAll(".error").forEach(function (el) { el.remove(); });
    copy.querySelectorAll(".invalid").forEach(function (el) { el.classList.remove("invalid"); });
    last.parentNode.appendChild(copy);
    copy.querySelector("select").focus();
  });
})();
