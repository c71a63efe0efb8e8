// longvid studio: the page. Plain JavaScript, no build step; everything it shows comes from /api/state and the
// server-sent events of /api/events. Every request carries the cookie the first page load set.
"use strict";

const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined) node.setAttribute(k, v);
  }
  children.forEach((c) => node.append(c));
  return node;
};

const studio = { state: null, selected: null, ownVersion: null, progress: { tasks: {}, workers: {} }, seen: [] };
window.studio = studio; // the browser tests read what the page saw

async function api(method, path, body) {
  const response = await fetch(path, {
    method, headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined, credentials: "same-origin",
  });
  let data = {};
  try { data = await response.json(); } catch (e) { /* not JSON */ }
  return { ok: response.ok, status: response.status, data };
}

async function load() {
  const { ok, data } = await api("GET", "/api/state");
  if (!ok) return;
  studio.state = data;
  draw();
}

function stateOfShot(shot) {
  const rows = shot.tasks.map((id) => taskById(id)).filter(Boolean);
  for (const s of ["failed", "running", "stale", "missing"]) if (rows.some((t) => t.state === s)) return s;
  return "fresh";
}
const taskById = (id) => studio.state.tasks.find((t) => t.id === id);

function draw() {
  const s = studio.state;
  $("#title").textContent = s.title || "longvid studio";
  $("#file").textContent = `${s.file}`;
  const problems = $("#problems");
  problems.hidden = !s.problems.length;
  problems.textContent = s.problems.join("\n");
  if (s.problems.length) return;
  $("#render").textContent = s.stale ? `Render stale (${s.stale})` : "Render";
  drawRender(s.render);
  drawVideo(s.video);
  drawTimeline(s);
  drawCast(s.references);
  if (!studio.selected || !s.shots.some((x) => x.id === studio.selected)) studio.selected = s.shots[0]?.id;
  drawShot(s.shots.find((x) => x.id === studio.selected));
}

function drawRender(render) {
  const node = $("#render-state");
  const state = render ? render.state : "idle";
  node.dataset.state = state;
  node.textContent = render ? `render ${render.number}: ${state}` + (render.summary ?
    ` (${render.summary.ran} ran, ${render.summary.cached} cached, ${render.summary.seconds.toFixed(1)} s)` : "") : "idle";
  $("#render").disabled = state === "running";
  if (render && render.error.length) showErrors($("#problems"), render.error);
}

function drawVideo(video) {
  const player = $("#video");
  $("#no-video").hidden = video.exists;
  $("#video-file").textContent = (video.exists ? "Playing " : "A render writes ") + video.path;
  player.hidden = !video.exists;
  const src = video.exists ? `/video?v=${video.mtime}` : "";
  if (player.dataset.src !== src) {
    player.dataset.src = src;
    if (src) player.src = src; else player.removeAttribute("src");
  }
}

function drawTimeline(s) {
  const line = $("#timeline");
  line.querySelectorAll(".shot, .seam, .fade").forEach((n) => n.remove());
  const total = s.total_frames;
  for (const shot of s.shots) {
    const [a, b] = shot.frames;
    const block = el("div", {
      class: "shot" + (shot.id === studio.selected ? " selected" : ""), "data-shot": shot.id,
      "data-state": stateOfShot(shot), title: `${shot.id}: ${shot.prompt}`,
      style: `width: ${(100 * (b - a)) / total}%`,
      onclick: () => { studio.selected = shot.id; seek(a / s.fps); draw(); },
    });
    const thumbs = el("div", { class: "thumbs" });
    for (const pic of shot.pictures) {
      thumbs.append(pic.thumb ? el("img", { class: "thumb", src: `/thumb/${pic.thumb}`, alt: pic.task, title: pic.prompt })
                              : el("div", { class: "thumb missing", title: `${pic.task}: not rendered yet` }));
    }
    block.append(el("div", { class: "label", text: `${shot.id} · ${shot.duration}s` }), thumbs, el("div", { class: "bar" }));
    line.append(block);
    if (shot.transition.type === "crossfade") {
      const half = (shot.transition.duration * s.fps) / 2;
      line.append(el("div", { class: "fade", title: `crossfade ${shot.transition.duration}s`,
        style: `left: ${(100 * (b - half)) / total}%; width: ${(100 * 2 * half) / total}%` }));
    }
  }
  for (const seam of s.qa.seams.filter((x) => x.flagged)) {
    line.append(el("div", { class: "seam", "data-seam": `${seam.shot}:${seam.chunk}`,
      title: `seam ${seam.shot} chunk ${seam.chunk}: score ${seam.score} > ${s.qa.threshold}`,
      style: `left: ${(100 * seam.frame) / total}%`, onclick: (e) => { e.stopPropagation(); seek(seam.frame / s.fps); } }));
  }
}

function seek(seconds) {
  const player = $("#video");
  if (player.src) player.currentTime = seconds + 0.001;
}

function drawCast(refs) {
  const cast = $("#cast");
  cast.replaceChildren(...refs.map((r) => el("div", { class: "ref", "data-ref": r.name, title: `in ${r.shots.join(", ")}` },
    r.thumb ? el("img", { src: `/thumb/${r.thumb}`, alt: r.name }) : el("div", { text: "(not rendered)" }),
    el("span", { text: r.name }))));
}

function drawShot(shot) {
  const panel = $("#shot");
  panel.hidden = !shot;
  if (!shot) return;
  const s = studio.state;
  const same = panel.dataset.shot === shot.id && panel.dataset.version === s.version;
  // never overwrite what is being typed, or typed and not saved yet
  const editing = same && (panel.contains(document.activeElement) || Object.keys(formChanges()).length > 0);
  $("#shot-id").textContent = shot.id;
  $("#shot-frames").textContent = `frames ${shot.frames[0]}-${shot.frames[1] - 1}, seed ${shot.seed}` +
    (shot.cast.length ? `, cast: ${shot.cast.join(", ")}` : "");
  $("#shot-cast").replaceChildren(...s.references.filter((r) => shot.cast.includes(r.name) && r.thumb).map((r) =>
    el("img", { src: `/thumb/${r.thumb}`, alt: r.name, title: r.name })));
  if (!editing) fillForm(shot);
  panel.dataset.shot = shot.id;
  panel.dataset.version = s.version;
  const body = $("#tasks tbody");
  body.replaceChildren(...shot.tasks.map(taskById).filter(Boolean).map((t) => {
    const index = t.id.split(":").pop();
    const name = `${t.kind}:${index}`;
    const take = shot.reroll[name] || 0;
    const takes = (t.kind === "keyframe" || t.kind === "chunk") && !isUserImage(shot, t);
    return el("tr", { class: "task", "data-task": t.id },
      el("td", { text: t.id }), el("td", {}, el("span", { class: `state ${t.state}`, text: t.state })),
      el("td", { class: "reasons", text: t.reasons.join("; ") }), el("td", { text: String(t.seed ?? "") }),
      el("td", { class: "take", text: takes ? String(take) : "" }),
      el("td", {}, ...(takes ? [
        el("button", { class: "small take-next", type: "button", "data-task": t.id, text: "Another take",
                       onclick: () => setTake(t.id, null) }),
        ...(take ? [el("button", { class: "small take-back", type: "button", "data-task": t.id, text: "Previous",
                                  onclick: () => setTake(t.id, take - 1) })] : []),
      ] : [])));
  }));
  const facts = shot.rendered;
  $("#facts").replaceChildren(facts ? el("div", {},
    el("p", { text: `rendered frames ${facts.frames[0]}-${facts.frames[1] - 1}, seed ${facts.seed}; models: ` +
                    `keyframes ${s.models.keyframes}, video ${s.models.video}, interpolation ${s.models.interpolation}` }),
    el("ul", {}, ...[...facts.keyframes, ...facts.chunks].map((f) => el("li", { text:
      `${f.task}: seed ${f.seed}` + (f.take ? `, take ${f.take}` : "") + (f.seconds != null ? `, ${f.seconds.toFixed(2)} s` : "") +
      (f.worker ? ` on ${f.worker}` : "") + (f.cached ? " (cached)" : "") })))) : el("p", { text: "not rendered yet" }));
}

const isUserImage = (shot, task) => shot.pictures.some((p) => p.task === task.id && p.user_image);

function fillForm(shot) {
  $("#prompt").value = shot.prompt;
  $("#duration").value = String(shot.duration);
  const camera = $("#camera");
  camera.replaceChildren(...studio.state.cameras.map((c) => el("option", { value: c, text: c })));
  camera.value = shot.camera;
  $("#transition").value = shot.transition.type;
  $("#fade").value = shot.transition.duration ?? "";
  $("#fade-label").hidden = shot.transition.type !== "crossfade";
  $("#keyframe-rows").replaceChildren(...shot.keyframes.map(keyframeRow));
  $("#errors").hidden = true;
}

function keyframeRow(kf) {
  const row = el("div", { class: "keyframe" },
    el("input", { class: "kf-at", type: "text", value: String(kf.at), title: "seconds into the shot" }),
    el("input", { class: "kf-prompt", type: "text", value: kf.prompt ?? "", placeholder: "(the shot's prompt)" }),
    el("button", { class: "small", type: "button", text: "Remove", onclick: () => row.remove() }));
  if (kf.image) row.dataset.image = kf.image;
  return row;
}

function formChanges() {
  const shot = studio.state.shots.find((x) => x.id === studio.selected);
  const changes = {};
  const prompt = $("#prompt").value;
  if (prompt !== shot.prompt) changes.prompt = prompt;
  const duration = $("#duration").value.trim();
  if (duration !== String(shot.duration)) changes.duration = duration;
  if ($("#camera").value !== shot.camera) changes.camera = $("#camera").value;
  const type = $("#transition").value;
  const transition = type === "cut" ? "cut" : { type, duration: number($("#fade").value) };
  if (JSON.stringify(transition === "cut" ? { type: "cut" } : transition) !== JSON.stringify(shot.transition)) {
    changes.transition = transition;
  }
  const keyframes = [...document.querySelectorAll("#keyframe-rows .keyframe")].map((row) => {
    const kf = { at: number(row.querySelector(".kf-at").value) };
    const p = row.querySelector(".kf-prompt").value.trim();
    if (p) kf.prompt = p;
    if (row.dataset.image) kf.image = row.dataset.image;
    return kf;
  });
  if (JSON.stringify(keyframes) !== JSON.stringify(shot.keyframes)) changes.keyframes = keyframes.length ? keyframes : null;
  return changes;
}

function number(text) {
  const n = Number(String(text).trim());
  return String(text).trim() !== "" && Number.isFinite(n) ? n : text;
}

function showErrors(box, errors) {
  box.hidden = !errors.length;
  box.textContent = errors.join("\n");
}

async function save(event) {
  event.preventDefault();
  const changes = formChanges();
  if (!Object.keys(changes).length) return;
  const { ok, status, data } = await api("POST", `/api/shots/${encodeURIComponent(studio.selected)}`,
                                         { changes, version: studio.state.version });
  if (!ok) {
    showErrors($("#errors"), data.errors || [`the server answered ${status}`]);
    if (status === 409) { notice("the storyboard changed on disk: reloaded"); await load(); showErrors($("#errors"), data.errors); }
    return;
  }
  studio.ownVersion = data.version;
  $("#errors").hidden = true;
  document.activeElement?.blur();
  await load();
}

async function setTake(task, take) {
  const { ok, data } = await api("POST", "/api/takes", { task, take, version: studio.state.version });
  if (!ok) { showErrors($("#errors"), data.errors || ["the take was refused"]); if (data.conflict) await load(); return; }
  studio.ownVersion = data.version;
  await load();
}

async function startRender() {
  const { ok, data } = await api("POST", "/api/render");
  if (!ok) { showErrors($("#problems"), data.errors || ["the render did not start"]); return; }
  $("#problems").hidden = true;
  studio.progress = { tasks: {}, workers: {} };
  $("#log").replaceChildren();
  await load();
}

function notice(text) {
  const n = $("#notice");
  n.textContent = text;
  n.hidden = false;
  setTimeout(() => { n.hidden = true; }, 6000);
}

// ---------------------------------------------------------------------------------------------- live progress

// The state is built from the plan and the cache (half a second for a ten-minute storyboard), so while a render
// runs the page asks for it at most every 2 s and shows each task's progress from the events themselves.
let refresh = null;
function refreshSoon(delay = 2000) {
  if (refresh && delay >= 2000) return;
  clearTimeout(refresh);
  refresh = setTimeout(() => { refresh = null; load(); }, delay);
}

const LIVE = { started: "running", succeeded: "fresh", cached: "fresh", failed: "failed" };

function onProgress(e) {
  const event = JSON.parse(e.data);
  studio.seen.push(event);
  const p = studio.progress;
  if (event.task) {
    const kind = event.kind || event.task.split(":")[0];
    p.tasks[event.task] = { kind, state: event.type };
  }
  if (event.worker && event.type === "started") p.workers[event.worker] = `${event.task} (${event.message})`;
  if (event.worker && ["succeeded", "failed"].includes(event.type) && p.workers[event.worker]?.startsWith(event.task)) {
    p.workers[event.worker] = "idle";
  }
  const text = [event.type, event.task, event.worker && `on ${event.worker}`, event.seconds != null && event.type !== "finished"
    ? `${event.seconds.toFixed(2)} s` : null, event.message].filter(Boolean).join(" ");
  $("#log").prepend(el("li", { class: `event ${event.type}`, text }));
  drawProgress();
  const row = event.task && studio.state && studio.state.tasks && taskById(event.task);
  if (row && LIVE[event.type]) {
    row.state = LIVE[event.type];
    if (row.shot === studio.selected) drawShot(studio.state.shots.find((x) => x.id === studio.selected));
  }
  if (["job", "finished"].includes(event.type)) refreshSoon(100);
  else if (["started", "succeeded", "failed"].includes(event.type)) refreshSoon();
}

function drawProgress() {
  const by = {};
  for (const t of Object.values(studio.progress.tasks)) {
    const k = (by[t.kind] ||= { done: 0, total: 0, running: 0 });
    k.total += 1;
    if (["succeeded", "cached"].includes(t.state)) k.done += 1;
    if (t.state === "started") k.running += 1;
  }
  $("#stages").replaceChildren(...Object.entries(by).map(([kind, k]) => el("div", { class: "stage", "data-kind": kind },
    el("span", { text: `${kind}: ${k.done}/${k.total}` + (k.running ? `, ${k.running} running` : "") }),
    el("progress", { max: String(k.total), value: String(k.done) }))));
  $("#workers").replaceChildren(...Object.entries(studio.progress.workers).map(([w, t]) =>
    el("li", { class: "worker", "data-worker": w, text: `${w}: ${t}` })));
}

function listen() {
  const source = new EventSource(`/api/events?version=${studio.state ? studio.state.version : ""}`);
  source.addEventListener("progress", onProgress);
  source.addEventListener("render", () => refreshSoon(100));
  source.addEventListener("storyboard", (e) => {
    const { version } = JSON.parse(e.data);
    if (version !== studio.ownVersion) notice("the storyboard changed on disk: reloaded");
    load();
  });
}

$("#edit").addEventListener("submit", save);
$("#render").addEventListener("click", startRender);
$("#add-keyframe").addEventListener("click", () => $("#keyframe-rows").append(keyframeRow({ at: 0 })));
$("#transition").addEventListener("change", () => { $("#fade-label").hidden = $("#transition").value !== "crossfade"; });
$("#video").addEventListener("timeupdate", () => {
  const s = studio.state;
  if (!s || !s.total_frames) return;
  $("#playhead").style.left = `${(100 * $("#video").currentTime * s.fps) / s.total_frames}%`;
});
load().then(listen);
