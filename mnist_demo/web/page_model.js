// page_model.js: the page's copy of the model the server picked, fetched once per version and kept.
//
// Runs as the js_on_load of the gr.HTML that ui/page_model.py builds (`element`, `props`, `server` and
// `watch` come from Gradio; MnistNet from net.js in its head). The component's value is a small JSON
// reference, {"hash": ..., "kind": ..., "size": ..., "crop": ..., "decline_below": ..., "decline_score": ...,
// "decline_weight": ...}, set by any server event (a model picked, an epoch trained, a file loaded); the weights come on request
// from `server.page_weights(hash)` and are kept by hash, so switching back to a model costs nothing.
// It exposes window.mnistDemo.models:
//
//   models.get(hash)      -> Promise of an MnistNet.Net (fetched once, then from the cache)
//   models.current        -> the Net for the component's value, or null until it has arrived
//   models.currentHash    -> the hash the value names (set at once, before its weights arrive)
//   models.currentRef     -> the whole reference (decline_below, decline_score, decline_weight: the "not a
//                            digit" rule; a "residual" rule's subspace comes with the weights, net.js)
//   models.onChange(fn)   -> call fn(net or null) each time `current` changes
const MAX_KEPT = 8; // models kept in the page; the oldest is dropped past this (a CNN is 0.4 MB, 0.6 MB with its subspace)
const cache = new Map(); // hash -> Promise of a Net, in order of last use
const listeners = [];
const demo = (window.mnistDemo = window.mnistDemo || {});

function get(hash) {
  let net = cache.get(hash);
  if (net) {
    cache.delete(hash); // re-insert: the Map's order is the order of last use
  } else {
    net = server.page_weights(hash).then((payload) => {
      if (!payload) throw new Error(`the server no longer holds the page model ${hash}`);
      return MnistNet.fromPayload(payload);
    });
    net.catch(() => cache.delete(hash)); // a failed fetch is tried again next time
  }
  cache.set(hash, net);
  while (cache.size > MAX_KEPT) cache.delete(cache.keys().next().value);
  return net;
}

function setCurrent(net) {
  models.current = net;
  for (const fn of listeners) fn(net);
}

function follow() {
  let ref = null;
  try {
    ref = props.value ? JSON.parse(props.value) : null;
  } catch (err) {
    console.warn("page model: the value is not JSON", err);
  }
  models.currentHash = ref ? ref.hash : null;
  models.currentRef = ref;
  if (!ref) return setCurrent(null);
  get(ref.hash).then(
    (net) => models.currentHash === ref.hash && setCurrent(net),
    (err) => {
      console.warn("page model: the server reads instead;", err.message);
      if (models.currentHash === ref.hash) setCurrent(null);
    },
  );
}

const models = (demo.models = {
  get,
  current: null,
  currentHash: null,
  currentRef: null,
  onChange: (fn) => listeners.push(fn),
});
follow();
watch("value", follow);
