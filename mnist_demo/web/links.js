// links.js: in-page links to a section of another tab. A link written `#train:watch-it-learn` (see
// mnist_demo/guide.py `in_page`) opens the tab named "Train", waits until the element with id
// `watch-it-learn` is shown (a tab's content is built the first time it opens), and scrolls to it.
//
// Runs as the js_on_load of a gr.HTML in the Guide tab (ui/guide.py); the listener is on the document,
// added once however often the component loads.
const SHOW_WAIT_MS = 5000; // the most a tab may take to build its content the first time
const demo = (window.mnistDemo = window.mnistDemo || {});

function openTab(name) {
  const tab = [...document.querySelectorAll('[role="tab"]')].find(
    (button) => button.innerText.trim().toLowerCase() === name.toLowerCase(),
  );
  if (tab) tab.click();
  return !!tab;
}

function scrollWhenShown(id, started = performance.now()) {
  const target = document.getElementById(id);
  if (target && target.offsetParent !== null) {
    target.scrollIntoView({ block: "start" });
    demo.links.last = id;
  } else if (performance.now() - started < SHOW_WAIT_MS) {
    setTimeout(() => scrollWhenShown(id, started), 50);
  }
}

function follow(event) {
  const link = event.target.closest && event.target.closest("a[href^='#']");
  const match = link && /^#([\w-]+):([\w-]+)$/.exec(link.getAttribute("href"));
  if (!match) return;
  event.preventDefault();
  if (openTab(match[1].replace(/-/g, " "))) scrollWhenShown(match[2]);
}

if (!demo.links) {
  demo.links = { last: null };
  document.addEventListener("click", follow);
}
