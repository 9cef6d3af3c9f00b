(function () {
  "use strict";
  var collator = new Intl.Collator(undefined, {numeric: true, sensitivity: "base"});
  function key(row, index, numeric) {
    var cell = row.cells[index];
    if (!cell) { return numeric ? NaN : ""; }
    var raw = cell.getAttribute("data-v");
    var text = raw === null ? cell.textContent : raw;
    return numeric ? (text === "" ? NaN : Number(text)) : text;
  }
  function sortTable(table, th) {
    var index = th.cellIndex;
    var numeric = th.getAttribute("data-type") === "num";
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    var body = table.tBodies[0];
    var keyed = Array.prototype.map.call(body.rows, function (row, i) {
      return [key(row, index, numeric), i, row];
    });
    keyed.sort(function (a, b) {
      var x = a[0], y = b[0];
      if (numeric && (isNaN(x) || isNaN(y))) {
        return isNaN(x) === isNaN(y) ? a[1] - b[1] : (isNaN(x) ? 1 : -1);
      }
      var order = numeric ? (x < y ? -1 : (x > y ? 1 : 0)) : collator.compare(x, y);
      return (ascending ? order : -order) || a[1] - b[1];
    });
    var fragment = document.createDocumentFragment();
    keyed.forEach(function (item) { fragment.appendChild(item[2]); });
    body.appendChild(fragment);
    Array.prototype.forEach.call(th.parentNode.cells, function (other) {
      other.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      th.addEventListener("click", function () { sortTable(table, th); });
      th.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          sortTable(table, th);
        }
      });
    });
  });
  document.querySelectorAll("input[data-filter]").forEach(function (input) {
    var table = document.getElementById(input.getAttribute("data-filter"));
    var caption = table.caption;
    var unfiltered = caption ? caption.textContent : "";
    input.addEventListener("input", function () {
      var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      var rows = table.tBodies[0].rows;
      var shown = 0;
      Array.prototype.forEach.call(rows, function (row) {
        var text = row.textContent.toLowerCase();
        row.hidden = !words.every(function (word) { return text.indexOf(word) >= 0; });
        shown += row.hidden ? 0 : 1;
      });
      if (caption) {
        caption.textContent = words.length === 0 ? unfiltered :
          shown + " of " + rows.length + " results match the filter: click a column " +
          "header to sort";
      }
    });
  });
}());
