// The demo page: every task live in the browser, each model in its own Web Worker (the page
// never blocks), loaded with a byte progress bar and kept for offline use by the package.
import { createWorker } from "./pkg/index.js";

const $ = (id) => document.getElementById(id);
const mb = (b) => (b / 1e6).toFixed(1);
const ms = (t) => Math.round(t);

const EXAMPLES = {
  "zh-sentiment": "这家酒店的服务太好了，下次还会再来！",
  "en-sentiment": "A gorgeous, witty and deeply moving film.",
  vitaminc: ["The film grossed over $100 million worldwide.", "The film earned $112 million at the worldwide box office."],
};
const RELATION_EXAMPLES = [
  { text: "Barack Obama was born in Honolulu.", head: [0, 12], tail: [25, 33] },
  { text: "Paris is the capital of France.", head: [24, 30], tail: [0, 5] },
  { text: "Apple was founded by Steve Jobs.", head: [0, 5], tail: [21, 31] },
];

let manifest = { models: [] };
const workers = new Map();

function setStatus(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

/** " (step a/b)" for the model in training, else "". */
function stepOf(id) {
  const t = manifest.training;
  return t?.current === id && t.progress ? ` (step ${t.progress.step}/${t.progress.steps})` : "";
}

/** Fills `select` with `ids`, keeping the current choice when it is still there. */
function fillSelect(select, ids, label = (id) => id) {
  const before = select.value;
  select.replaceChildren(...ids.map((id) => new Option(label(id), id)));
  if (ids.includes(before)) select.value = before;
}

/** The status line: models there, and those still training (scripts/demo.sh trains them while
 *  the page is up; the manifest lists the rest of the plan and the current step). */
function showStatus() {
  const total = manifest.models.reduce((n, m) => n + m.bytes, 0);
  let text = `${manifest.models.length} models available (${mb(total)} MB in all, each loaded when first used).`;
  const pending = manifest.training?.pending ?? [];
  if (pending.length) text += ` Still training: ${pending.map((id) => id + stepOf(id)).join(", ")}; each appears here when its training ends.`;
  document.body.dataset.training = String(pending.length);
  setStatus(text);
}

/** While models are training, re-reads the manifest every few seconds and adds what is new. */
async function followTraining() {
  while (manifest.training?.pending?.length) {
    await new Promise((r) => setTimeout(r, 3000));
    try {
      const res = await fetch("./models/manifest.json", { cache: "no-store" });
      if (!res.ok) continue;
      const next = await res.json();
      const grew = next.models.length !== manifest.models.length;
      manifest = next;
      if (grew) refreshModels();
      showStatus();
    } catch {
      // the server may be restarting; try again
    }
  }
}

/** The model lists after new models arrived. */
function refreshModels() {
  const classify = $("classify-model");
  const had = classify.value;
  fillSelect(classify, manifest.models.filter((m) => m.task === "classify").map((m) => m.id));
  if (!had && classify.value) classify.onchange();
  fillSelect($("relate-model"), manifest.models.filter((m) => m.task === "relate").map((m) => m.id), (id) => id.replace("relations-", ""));
  // The first relate model brings the held-out examples.
  if (manifest.relation_examples?.length && !$("relate-example").dataset.heldOut) setupRelate();
}

/** The worker of model `id`, loading it on first use with a progress bar in `box`. */
function model(id, box) {
  if (!workers.has(id)) {
    const info = manifest.models.find((m) => m.id === id);
    const promise = (async () => {
      if (!info && manifest.training?.pending?.includes(id)) {
        throw new Error(`the model "${id}" is still training${stepOf(id)}; it appears here when its training ends`);
      }
      if (!info) throw new Error(`the model "${id}" was not built for this site`);
      const worker = createWorker();
      const bar = document.createElement("progress");
      bar.max = info.bytes;
      bar.value = 0;
      const text = document.createElement("span");
      box.dataset.progress = "0";
      box.replaceChildren(`Loading ${id} `, bar, text);
      const t0 = performance.now();
      const ready = await worker.load(`./models/${id}/`, {
        onProgress: ({ loaded, total }) => {
          bar.max = total ?? info.bytes;
          bar.value = loaded;
          box.dataset.progress = String(Math.round((100 * loaded) / bar.max));
          text.textContent = ` ${mb(loaded)} / ${mb(bar.max)} MB`;
        },
      });
      bar.value = bar.max;
      box.dataset.progress = "100";
      const threads = ready.threads > 1 ? `${ready.threads} threads` : "1 thread";
      const f16 = info.variants?.f16 ? `; f16 would be ${mb(info.variants.f16.bytes)} MB` : "";
      text.textContent = ` ${mb(info.bytes)} MB ${info.dtype ?? ""}${f16}, ready in ${ms(performance.now() - t0)} ms (wasm ${ready.build}, ${threads})`;
      const t = info.trained;
      if (t) {
        // Honest labels: what it learnt from and how it scored on dev, as the trainer wrote it.
        const note = document.createElement("small");
        note.className = "trained";
        const score = info.dev_metric == null ? "no dev score" : `dev ${t.metric} ${info.dev_metric.toFixed(3)}${t.dev_examples ? ` on ${t.dev_examples} examples` : ""}`;
        note.textContent = ` Trained from ${t.base} on ${t.data}: ${t.examples} examples, ${t.epochs} epoch${t.epochs === 1 ? "" : "s"}; ${score}.`;
        box.append(note);
      }
      return worker;
    })();
    promise.catch((e) => {
      workers.delete(id);
      box.replaceChildren(`Could not load ${id}: ${e.message}`);
      box.classList.add("error");
    });
    workers.set(id, promise);
  }
  return workers.get(id);
}

async function timed(el, fn) {
  const t0 = performance.now();
  const out = await fn();
  el.textContent = `${ms(performance.now() - t0)} ms`;
  return out;
}

function bars(el, prediction, top = Infinity) {
  const rows = Object.entries(prediction.scores).sort((a, b) => b[1] - a[1]).slice(0, top);
  el.replaceChildren(
    ...rows.map(([label, p]) => {
      const row = document.createElement("div");
      row.className = "bar" + (label === prediction.label ? " best" : "");
      row.dataset.label = label;
      row.innerHTML = `<span class="name"></span><span class="track"><span class="fill"></span></span><span class="pct"></span>`;
      row.querySelector(".name").textContent = label;
      row.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
      row.querySelector(".pct").textContent = `${(100 * p).toFixed(1)}%`;
      return row;
    }),
  );
  el.dataset.label = prediction.label;
}

function showError(el, e) {
  el.replaceChildren(Object.assign(document.createElement("p"), { className: "error", textContent: e.message }));
}

// ---------- classify ----------
function setupClassify() {
  const select = $("classify-model");
  const ids = manifest.models.filter((m) => m.task === "classify").map((m) => m.id);
  select.replaceChildren(...ids.map((id) => new Option(id, id)));
  const onModel = () => {
    const id = select.value;
    const pair = Array.isArray(EXAMPLES[id]);
    $("classify-pair-row").hidden = !pair;
    $("classify-text").value = pair ? EXAMPLES[id][0] : EXAMPLES[id] ?? "";
    if (pair) $("classify-pair").value = EXAMPLES[id][1];
    $("classify-out").replaceChildren();
  };
  select.onchange = onModel;
  if (ids.length) onModel();
  $("classify-run").onclick = async () => {
    const out = $("classify-out");
    try {
      const w = await model(select.value, $("classify-load"));
      const pair = $("classify-pair-row").hidden ? undefined : $("classify-pair").value;
      bars(out, await timed($("classify-time"), () => w.classify($("classify-text").value, pair)));
    } catch (e) {
      showError(out, e);
    }
  };
}

// ---------- tag ----------
/** Transitions a BIO sequence breaks (e.g. O → I-PER): what a CRF removes. */
function invalidTransitions(tags) {
  let bad = 0;
  tags.forEach((t, i) => {
    if (!t.startsWith("I-")) return;
    const prev = tags[i - 1];
    if (!prev || prev === "O" || prev.slice(2) !== t.slice(2)) bad++;
  });
  return bad;
}

function renderSpans(el, text, spans, render) {
  const parts = [];
  let at = 0;
  for (const s of spans) {
    if (s.start > at) parts.push(document.createTextNode(text.slice(at, s.start)));
    parts.push(render(s));
    at = s.end;
  }
  if (at < text.length) parts.push(document.createTextNode(text.slice(at)));
  el.replaceChildren(...parts);
}

async function runTag() {
  const out = $("tag-out");
  const note = $("tag-note");
  const text = $("tag-text").value;
  const task = $("tag-model").value;
  note.textContent = "";
  try {
    if (task === "ner") {
      const decoder = document.querySelector("input[name=decoder]:checked").value;
      const w = await model(`msra-ner-${decoder}`, $("tag-load"));
      const r = await timed($("tag-time"), () => w.tag(text));
      renderSpans(out, text, r.spans, (s) => {
        const m = document.createElement("mark");
        m.className = s.label;
        m.dataset.label = s.label;
        m.textContent = s.text;
        return m;
      });
      out.dataset.spans = JSON.stringify(r.spans.map((s) => [s.label, s.text]));
      const bad = invalidTransitions(r.tokens.map((t) => t.tag));
      note.textContent = `${decoder}: ${r.spans.length} entities, ${bad} invalid tag transition(s)` +
        (decoder === "softmax" ? " — the CRF decoder never produces these." : " (constrained Viterbi).");
    } else {
      const [seg, pos] = await Promise.all([model("pd-seg", $("tag-load")), model("pd-pos", $("tag-load"))]);
      const [words, tags] = await timed($("tag-time"), () => Promise.all([seg.tag(text), pos.tag(text)]));
      renderSpans(out, text, words.spans, (s) => {
        const p = tags.spans.find((t) => t.start <= s.start && s.start < t.end);
        const w = document.createElement("span");
        w.className = "word";
        w.tabIndex = 0;
        w.textContent = s.text;
        w.title = p ? `POS: ${p.label}` : "POS: ?";
        w.dataset.pos = p?.label ?? "";
        return w;
      });
      out.dataset.spans = JSON.stringify(words.spans.map((s) => s.text));
      note.textContent = `${words.spans.length} words; hover or focus a word for its part of speech.`;
    }
  } catch (e) {
    showError(out, e);
  }
}

function setupTag() {
  $("tag-run").onclick = runTag;
  $("tag-model").onchange = () => {
    $("decoder-box").hidden = $("tag-model").value !== "ner";
  };
  for (const r of document.querySelectorAll("input[name=decoder]")) r.onchange = runTag;
}

// ---------- relate ----------
const marked = { head: null, tail: null };
let gold = null; // the gold label of the picked test example; cleared when the user edits

function showMarked() {
  const text = $("relate-text").value;
  const spans = ["head", "tail"].filter((k) => marked[k]).map((k) => ({ ...marked[k], label: k })).sort((a, b) => a.start - b.start);
  renderSpans($("relate-spans"), text, spans, (s) => {
    const m = document.createElement("mark");
    m.className = s.label;
    m.dataset.label = s.label;
    m.textContent = text.slice(s.start, s.end);
    return m;
  });
}

function setupRelate() {
  const select = $("relate-model");
  const ids = manifest.models.filter((m) => m.task === "relate").map((m) => m.id);
  select.replaceChildren(...ids.map((id) => new Option(id.replace("relations-", ""), id)));
  const examples = $("relate-example");
  // Held-out test sentences with their gold label when the site has them (scripts/site-models.py).
  const list = manifest.relation_examples?.length ? manifest.relation_examples : RELATION_EXAMPLES;
  examples.replaceChildren(...list.map((e, i) => new Option(e.gold ? `${e.text} (gold: ${e.gold})` : e.text, String(i))));
  examples.dataset.heldOut = list === RELATION_EXAMPLES ? "" : "1";
  const pick = () => {
    const e = list[Number(examples.value)];
    gold = e.gold ?? null;
    $("relate-text").value = e.text;
    marked.head = { start: e.head[0], end: e.head[1] };
    marked.tail = { start: e.tail[0], end: e.tail[1] };
    showMarked();
  };
  examples.onchange = pick;
  pick();
  const mark = (which) => () => {
    const t = $("relate-text");
    if (t.selectionStart === t.selectionEnd) return;
    marked[which] = { start: t.selectionStart, end: t.selectionEnd };
    gold = null; // the user's own spans: no gold label
    showMarked();
  };
  $("mark-head").onclick = mark("head");
  $("mark-tail").onclick = mark("tail");
  $("relate-text").oninput = () => {
    gold = null;
    marked.head = marked.tail = null;
    showMarked();
  };
  $("relate-run").onclick = async () => {
    const out = $("relate-out");
    try {
      if (!marked.head || !marked.tail) throw new Error("mark a head and a tail span first");
      const w = await model(select.value, $("relate-load"));
      const prediction = await timed($("relate-time"), () => w.relate($("relate-text").value, marked.head, marked.tail));
      bars(out, prediction, 3);
      if (gold) {
        const note = document.createElement("p");
        note.className = "gold";
        note.textContent = `gold: ${gold} — ${prediction.label === gold ? "correct" : "the model says " + prediction.label}`;
        out.append(note);
        out.dataset.gold = gold;
      } else delete out.dataset.gold;
    } catch (e) {
      showError(out, e);
    }
  };
}

async function main() {
  try {
    const res = await fetch("./models/manifest.json");
    if (!res.ok) throw new Error(`models/manifest.json: HTTP ${res.status}`);
    manifest = await res.json();
  } catch (e) {
    setStatus(`No models found (${e.message}). Build the site with scripts/demo.sh.`, true);
    return;
  }
  setupClassify();
  setupTag();
  setupRelate();
  showStatus();
  document.body.dataset.ready = "1";
  followTraining();
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("./sw.js").catch(() => {});
}

main();
