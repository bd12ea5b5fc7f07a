() => {
  // Brush sizes [ and ] step through (the editor's slider runs 1-100).
  const STEPS = [2, 4, 6, 10, 16, 24, 36, 50, 70, 100];
  // Keys go to a field the visitor types in (ticks, radios and sliders take no letters).
  const FIELDS = 'textarea, select, [contenteditable=""], [contenteditable=true], '
    + 'input:not([type=checkbox]):not([type=radio]):not([type=range]):not([type=button]):not([type=file])';
  const typing = (t) => t && t.closest && t.closest(FIELDS);
  const editor = () => document.querySelector('#editor');
  const button = (label) => editor()?.querySelector(`button[aria-label="${label}"], button[title="${label}"]`);
  const shown = (el) => el && el.offsetParent !== null && !el.disabled;
  async function openPopup(label, selector) {
    let found = editor()?.querySelector(selector);
    if (!found) { button(label)?.click(); await new Promise(r => setTimeout(r, 60)); found = editor()?.querySelector(selector); }
    return found;
  }
  // The editor closes its pop-ups on a mouse press outside them (nothing else closes them).
  const closePopup = () => document.body.dispatchEvent(new MouseEvent('mousedown', {bubbles: true}));
  async function brushSize(step) {
    button('Brush')?.click();
    const range = await openPopup('Brush Size', 'input[type=range]');
    if (!range) return;
    const now = Number(range.value);
    const next = step > 0 ? (STEPS.find(s => s > now) ?? STEPS[STEPS.length - 1])
                          : ([...STEPS].reverse().find(s => s < now) ?? STEPS[0]);
    Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set.call(range, String(next));
    range.dispatchEvent(new Event('input', {bubbles: true}));
    range.dispatchEvent(new Event('change', {bubbles: true}));
    setTimeout(closePopup, 400);
  }
  async function nextColour() {
    button('Brush')?.click();
    await openPopup('Color', 'button.color');
    const swatches = [...(editor()?.querySelectorAll('button.color') || [])];
    if (swatches.length < 2) { closePopup(); return; }
    const at = swatches.findIndex(s => s.classList.contains('selected') || s.getAttribute('aria-pressed') === 'true');
    swatches[(at + 1) % swatches.length].click();
    setTimeout(closePopup, 400);
  }
  document.addEventListener('keydown', (e) => {
    if (e.defaultPrevented || e.isComposing || typing(e.target)) return;
    const mod = e.ctrlKey || e.metaKey;
    const key = e.key.toLowerCase();
    let done = true;
    if ((key === 'e' && !mod && !e.altKey) || (key === 'enter' && mod)) {
      const run = document.querySelector('#run');
      if (shown(run)) run.click();
    } else if (key === 'escape') {
      const cancel = document.querySelector('#cancel');
      if (shown(cancel)) cancel.click(); else done = false;
    } else if (key === 'z' && mod && !e.shiftKey) {
      button('Undo')?.click();
    } else if ((key === 'z' && mod && e.shiftKey) || (key === 'y' && mod)) {
      button('Redo')?.click();
    } else if ((e.key === '[' || e.key === ']') && !mod) {
      brushSize(e.key === ']' ? 1 : -1);
    } else if (key === 'x' && !mod && !e.altKey) {
      nextColour();
    } else {
      done = false;
    }
    if (done) e.preventDefault();
  });
}
