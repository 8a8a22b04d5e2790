// Progressive enhancement only: every page works without this file.
// - "select all" checkboxes in the quarantine list
// - a confirmation before destructive buttons (data-confirm)
// - column names on table cells, for the card layout on phones
document.addEventListener('change', (e) => {
  const t = e.target;
  if (t instanceof HTMLInputElement && t.dataset.selectAll !== undefined) {
    for (const box of document.querySelectorAll('input[name="id"]')) box.checked = t.checked;
  }
});
document.addEventListener('submit', (e) => {
  const btn = e.submitter;
  const msg = (btn && btn.dataset && btn.dataset.confirm) || (e.target instanceof HTMLElement && e.target.dataset.confirm);
  if (msg && !window.confirm(msg)) e.preventDefault();
});

// Tables become cards on narrow screens (console.css): each cell gets its column's header text as
// data-label, so a page only needs a <thead> with one <th> per column. A cell spanning several
// columns has no single name and gets none; a label the server set is kept.
function labelTableCells(table) {
  const headRow = table.tHead && table.tHead.rows[0];
  if (!headRow) return;
  const names = [];
  for (const th of headRow.cells) for (let i = 0; i < th.colSpan; i++) names.push(th.colSpan === 1 ? th.textContent.trim() : '');
  for (const body of table.tBodies) {
    for (const row of body.rows) {
      let column = 0;
      for (const cell of row.cells) {
        if (cell.colSpan === 1 && !cell.hasAttribute('data-label') && names[column]) cell.dataset.label = names[column];
        column += cell.colSpan;
      }
    }
  }
  table.dataset.cards = '';
}
for (const table of document.querySelectorAll('table')) labelTableCells(table);
