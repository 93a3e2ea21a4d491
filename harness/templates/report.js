// report.html's script, inlined by the template: the matrix's view (outcomes or verdicts)
// and filters, and the drill-down into a cell (#KERNEL/CASE), drawn from the JSON in
// #report-data. Everything from the results is inserted as text, never parsed as markup.
"use strict";
(() => {
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const detail = document.getElementById("detail");
  const rows = Array.from(document.querySelectorAll("table.matrix tbody tr"));
  const kernels = Object.keys(data.kernels);

  // An element with these properties and children (elements or text; null is left out).
  function el(tag, props, ...children) {
    const node = Object.assign(document.createElement(tag), props);
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  function where(file, line) {
    return line === null || line === undefined ? file : file + ":" + line;
  }

  // A row of a step's facts: what they are, then this kernel's and, when compared, the
  // kernel before's; with `merge`, once across both columns when they are the same.
  function facts(term, className, mine, theirs, merge, wrap) {
    const side = (text, name) => el("dd", { className: name }, text === null ? null : wrap(text));
    if (theirs === undefined) return [el("dt", {}, term), side(mine, className)];
    if (merge && mine === theirs) return [el("dt", {}, term), side(mine, className + " both")];
    return [el("dt", {}, term), side(mine, className), side(theirs, className)];
  }

  // One item per step: its id, what it does and where it is written, how it differs from
  // the kernel before it (by version) that ran the case, then what it was expected to do
  // and did, here and there, and why, for a versioned expectation.
  function stepsList(kernel, name, cell, previous) {
    const compared = previous !== null;
    const before = new Map();
    if (compared) {
      for (const index of data.cells[previous][name].steps) before.set(data.steps[index].id, data.steps[index]);
    }
    const differences = cell.differences || {};
    const className = compared ? "sides compared" : "sides";
    const code = (text) => el("code", {}, text);
    const items = cell.steps.map((index) => {
      const step = data.steps[index];
      const missing = { expected: "—", actual: "no such step", reason: null };
      const other = compared ? before.get(step.id) || missing : {};
      const list = el("dl", { className },
        ...facts("expected", "expected", step.expected, other.expected, false, code),
        ...facts("actual", "actual", step.actual, other.actual, false, code));
      if (step.reason !== null || (compared && other.reason !== null)) {
        list.append(...facts("because", "reason", step.reason, other.reason, true, (text) => text));
      }
      const difference = differences[step.id];
      const item = el("li", { className: step.diverged ? "step diverged" : "step" },
        el("p", {}, el("b", {}, step.id), " ", step.label, step.diverged ? el("em", {}, " DIVERGED") : null,
          " ", el("code", { className: "where" }, where(cell.file, step.line))),
        difference === undefined ? null : el("p", { className: "difference" }, difference.note),
        list);
      if (difference !== undefined) item.dataset.change = difference.kind;
      return item;
    });
    const head = el("div", { className }, el("span"), el("span", {}, "on " + data.kernels[kernel].label),
      compared ? el("span", {}, "on " + data.kernels[previous].label) : null);
    return [head, el("ol", { className: "steps" }, ...items)];
  }

  function select(kernel, name) {
    for (const old of document.querySelectorAll("td.selected")) old.classList.remove("selected");
    const row = rows.find((r) => r.dataset.case === name);
    const column = kernels.indexOf(kernel);
    if (row && column >= 0) {
      const cell = row.cells[column + 1];
      cell.classList.add("selected");
      reveal(cell);
    }
  }

  // Brings a cell into view by scrolling the matrix's box, not the page: beside the sticky
  // case column (with room for the selection's outline), and vertically centred in the
  // part of the box on screen when it is out of it, below the sticky header row.
  function reveal(cell) {
    const wrap = cell.closest(".table-wrap");
    const box = wrap.getBoundingClientRect();
    const at = cell.getBoundingClientRect();
    const outline = 4;
    const left = box.left + cell.parentElement.cells[0].getBoundingClientRect().width + outline;
    const right = box.right - outline;
    if (at.right > right) wrap.scrollLeft += at.right - right;
    else if (at.left < left) wrap.scrollLeft -= left - at.left;
    const top = Math.max(box.top, 0) + wrap.querySelector("thead").getBoundingClientRect().height;
    const bottom = Math.min(box.bottom, window.innerHeight);
    if (at.top < top || at.bottom > bottom) wrap.scrollTop += at.top - (top + bottom - at.height) / 2;
  }

  // Opens the drill-down of one cell; false when the results have no such kernel.
  function show(kernel, name) {
    const info = data.kernels[kernel];
    if (!info) return false;
    const cell = (data.cells[kernel] || {})[name];
    const close = el("button", { className: "close", type: "button", title: "close (Esc)" }, "✕ close");
    close.addEventListener("click", () => { location.hash = ""; });
    const parts = [close, el("h2", {}, name, " on ", info.label)];
    if (cell) {
      const state = el("b", {}, cell.outcome);
      state.dataset.state = cell.outcome;
      parts.push(el("p", { className: "outcome" }, state, cell.note === null ? null : ": " + cell.note,
        ` (${cell.duration_ms} ms) `, el("code", {}, cell.file)));
      const diverged = cell.steps.filter((i) => data.steps[i].diverged).length;
      const kinds = Object.values(cell.differences || {}).map((d) => d.kind);
      const changed = kinds.filter((kind) => kind !== "drift").length;
      // The kernel before this one (by version) that ran the case, if any.
      const previous = cell.previous === undefined ? info.previous : cell.previous;
      const compared = previous === null
        ? (cell.outcome === "skipped" ? "" : "; no kernel before it (by version) ran the case")
        : `; ${changed} changed from ${data.kernels[previous].label}, ${kinds.length - changed} drifted`;
      parts.push(el("p", {}, `${cell.steps.length} step(s), ${diverged} diverged${compared}`));
      if (cell.steps.length > 0) parts.push(...stepsList(kernel, name, cell, previous));
    } else {
      parts.push(el("p", {}, info.trouble === null ? "This kernel's run has no such case." : info.trouble));
    }
    if (info.log_tail !== null) {
      parts.push(el("details", {}, el("summary", {}, "console tail"), el("pre", {}, info.log_tail)));
    }
    detail.replaceChildren(...parts);
    detail.hidden = false;
    document.body.classList.add("detail-open");
    detail.dataset.kernel = kernel;
    detail.dataset.case = name;
    select(kernel, name);
    return true;
  }

  // The fragment names a cell: the kernel and the case, each percent-encoded, joined by "/".
  function route() {
    const hash = location.hash.slice(1);
    const at = hash.indexOf("/");
    if (at > 0) {
      try {
        if (show(decodeURIComponent(hash.slice(0, at)), decodeURIComponent(hash.slice(at + 1)))) return;
      } catch (e) {
        // A malformed fragment opens nothing.
      }
    }
    detail.hidden = true;
    document.body.classList.remove("detail-open");
    select(null, null);
  }

  // Filters start from the query (report.html?only=troubled&case=clone), so a link can
  // carry them.
  const form = document.getElementById("filters");
  const query = new URLSearchParams(location.search);
  for (const box of form.querySelectorAll("input[name=only]")) {
    box.checked = query.getAll("only").includes(box.value);
  }
  form.elements.case.value = query.get("case") || "";
  // The cells show outcomes or verdicts: the page's choice (outcomes when there are kernels
  // to compare), or the query's (report.html?view=verdicts).
  const matrix = document.getElementById("matrix");
  const view = query.get("view");
  if (view === "outcomes" || view === "verdicts") matrix.dataset.view = view;
  form.elements.view.value = matrix.dataset.view;
  function apply() {
    matrix.dataset.view = form.elements.view.value;
    const only = Array.from(form.querySelectorAll("input[name=only]:checked"), (box) => box.value);
    const text = form.elements.case.value.trim().toLowerCase();
    let shown = 0;
    for (const row of rows) {
      row.hidden = !(only.every((flag) => row.hasAttribute("data-" + flag)) && row.dataset.case.includes(text));
      if (!row.hidden) shown += 1;
    }
    document.getElementById("shown").textContent = `${shown} of ${rows.length} cases shown`;
  }
  form.addEventListener("input", apply);
  form.addEventListener("submit", (event) => event.preventDefault());
  form.hidden = false;
  apply();

  window.addEventListener("hashchange", route);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !detail.hidden) location.hash = "";
  });
  route();
  // When the page was ready, in ms from the start of navigation (the browser test reads it).
  document.body.dataset.readyMs = String(Math.round(performance.now()));
})();
