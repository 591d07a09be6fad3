// MiWei console: small conveniences only; every page works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", function () {
      document.querySelectorAll("input.pick").forEach(function (box) { box.checked = all.checked; });
    });
  }
  var file = document.getElementById("rule-file");
  if (file) {
    file.addEventListener("change", function () {
      var chosen = file.files && file.files[0];
      if (!chosen) { return; }
      var reader = new FileReader();
      reader.onload = function () {
        document.getElementById("rule-text").value = String(reader.result);
        var name = document.getElementById("rule-name");
        if (!name.value) { name.value = chosen.name; }
      };
      reader.readAsText(chosen);
    });
  }
  // full hashes: a copy button beside each (hidden without this file; the hash selects as a whole anyway)
  document.querySelectorAll("button.copy[data-copy]").forEach(function (button) {
    if (!navigator.clipboard) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(button.getAttribute("data-copy")).then(function () {
        button.textContent = button.getAttribute("data-done") || button.textContent;
      });
    });
  });
});
