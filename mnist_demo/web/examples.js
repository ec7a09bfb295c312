// The example drawings under the pad: a click on one fires the component's 'select' event with its index
// (ui/draw.py answers by putting that drawing's strokes on the pad, which then reads them).
//
// The body of a gr.HTML `js_on_load` (ui/draw.py's example_strip): `element` holds one button per example,
// each with its index in data-index.
element.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-index]");
  if (button) trigger("select", { index: Number(button.dataset.index), value: button.dataset.name });
});
