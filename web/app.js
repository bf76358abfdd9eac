// minipach's dashboard, and the same page as a static report. It draws the overview objects of
// daemon/core/overview.ts: from the daemon's API, updated live through server-sent events, or embedded in a
// report (window.MINIPACH.overviews), where it needs nothing but this file and the three libraries beside it:
// dagre (graph layout), Tabulator (tables) and Chart.js (charts). No framework, no build step.
'use strict';
(() => {
  const CFG = window.MINIPACH || { mode: 'live' };
  const LIVE = CFG.mode === 'live';
  const STATES = ['done', 'running', 'queued', 'failed', 'blocked'];
  let overviews = CFG.overviews || [];
  let current = 0;
  let selectedPipeline;
  let selectedDatum;
  let datumsTable;
  let runsTable;
  const charts = {};
  /** What Retry answered, per datum label: kept across the live re-renders of the datum's panel. */
  const retryNotes = new Map();

  const $ = (id) => document.getElementById(id);
  const NS = 'http://www.w3.org/2000/svg';
  function el(tag, attrs = {}, ...children) {
    const e = tag.startsWith('svg:') ? document.createElementNS(NS, tag.slice(4)) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) if (c !== undefined && c !== null) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  }
  const fixed = (n, d = 2) => (n === undefined || n === null ? '' : Number(n).toFixed(d));
  const short = (s) => (s ? String(s).slice(0, 12) : '');

  async function api(path, opts = {}) {
    const r = await fetch(path, { credentials: 'same-origin', ...opts });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.error || `${r.status} ${r.statusText}`);
    return body;
  }
  const ds = () => overviews[current];
  const selector = () => `dataset=${encodeURIComponent(ds().dataset)}&branch=${encodeURIComponent(ds().branch)}`;
  const pipelineOf = (name) => ds().pipelines.find((p) => p.name === name);
  const datumByLabel = (label) => {
    const i = label.indexOf('/');
    return pipelineOf(label.slice(0, i))?.datums.find((d) => d.name === label.slice(i + 1));
  };

  // ---- graphs: dagre lays out, we draw SVG --------------------------------------------------------
  function drawGraph(container, nodes, edges, opts = {}) {
    const g = new dagre.graphlib.Graph();
    g.setGraph({ rankdir: opts.rankdir || 'LR', nodesep: 24, ranksep: 60, marginx: 12, marginy: 12 });
    g.setDefaultEdgeLabel(() => ({}));
    for (const n of nodes) g.setNode(n.id, { width: n.width, height: n.height });
    for (const e of edges) if (g.hasNode(e.from) && g.hasNode(e.to)) g.setEdge(e.from, e.to);
    dagre.layout(g);
    const { width, height } = g.graph();
    const svg = el('svg:svg', { width: Math.max(width, 200), height: Math.max(height, 60), role: 'img', 'aria-label': opts.label || 'graph' });
    // A marker of each drawing's own: one inside a hidden tab would draw no arrowheads elsewhere.
    const arrow = `arrow-${container.id}`;
    svg.append(el('svg:defs', {}, el('svg:marker', { id: arrow, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto' }, el('svg:path', { d: 'M0,0 L10,5 L0,10 z', fill: '#90a4ae' }))));
    for (const e of g.edges()) {
      const pts = g.edge(e).points;
      svg.append(el('svg:path', { class: 'edge', 'marker-end': `url(#${arrow})`, d: pts.map((p, i) => `${i ? 'L' : 'M'}${p.x},${p.y}`).join(' ') }));
    }
    for (const n of nodes) {
      const pos = g.node(n.id);
      const group = el('svg:g', { class: `node ${n.class || ''}`, transform: `translate(${pos.x - n.width / 2},${pos.y - n.height / 2})`, ...n.attrs });
      group.append(el('svg:rect', { width: n.width, height: n.height, rx: 6 }));
      n.draw(group);
      if (n.onclick) group.addEventListener('click', n.onclick);
      svg.append(group);
    }
    container.replaceChildren(svg);
  }

  function renderDag() {
    const d = ds();
    const nodes = [
      ...d.repos.map((r) => ({ id: `repo:${r}`, width: 120, height: 34, class: 'repo', attrs: { 'data-repo': r }, draw: (g) => g.append(el('svg:text', { x: 10, y: 21 }, r)) })),
      ...d.pipelines.map((p) => ({
        id: `pipeline:${p.name}`,
        width: 300,
        height: 52,
        class: `pipeline ${p.status !== 'ready' ? 'invalid' : ''} ${p.name === selectedPipeline ? 'selected' : ''}`,
        attrs: { 'data-pipeline': p.name, 'data-status': p.status },
        onclick: () => selectPipeline(p.name),
        draw: (g) => {
          g.append(el('svg:text', { x: 10, y: 19, class: 'title' }, p.name, p.status !== 'ready' ? ` (${p.status})` : ''));
          const t = el('svg:text', { x: 10, y: 40 });
          for (const s of STATES) t.append(el('svg:tspan', { class: `count ${s}`, 'data-state': s, dx: s === 'done' ? 0 : 8 }, `${p.counts[s]} ${s}`));
          g.append(t);
        },
      })),
    ];
    const names = new Set(d.pipelines.map((p) => p.name));
    const edges = d.pipelines.flatMap((p) => p.inputs.map((i) => ({ from: names.has(i) ? `pipeline:${i}` : `repo:${i}`, to: `pipeline:${p.name}` })));
    drawGraph($('dag'), nodes, edges, { label: `pipelines of ${d.dataset} ${d.branch}` });
  }

  // ---- a pipeline's datums ------------------------------------------------------------------------
  function selectPipeline(name) {
    selectedPipeline = name;
    selectedDatum = undefined;
    $('datum').hidden = true;
    renderDag();
    renderDatums(true);
  }

  const stateCell = (cell) => `<span class="state ${cell.getValue()}">${cell.getValue()}</span>`;
  function renderDatums(replace) {
    const p = pipelineOf(selectedPipeline) || ds().pipelines[0];
    if (!p) return;
    selectedPipeline = p.name;
    $('pipeline-title').textContent = `Datums of ${p.name}${p.error ? `: ${p.error}` : ''}`;
    const rows = p.datums.map((d) => ({ ...d, rss: d.maxRssKiB === undefined ? undefined : d.maxRssKiB / 1024 }));
    if (datumsTable && !replace) datumsTable.replaceData(rows);
    else {
      datumsTable?.destroy();
      datumsTable = new Tabulator('#datums', {
        data: rows,
        index: 'name',
        layout: 'fitColumns',
        maxHeight: '360px',
        placeholder: 'no datums',
        initialSort: [{ column: 'name', dir: 'asc' }],
        columns: [
          { title: 'datum', field: 'name', headerFilter: 'input', widthGrow: 2 },
          { title: 'state', field: 'state', formatter: stateCell, headerFilter: 'list', headerFilterParams: { values: ['', ...STATES] } },
          { title: 'datum key', field: 'key', formatter: (c) => short(c.getValue()) },
          { title: 'reason', field: 'reason', headerFilter: 'input', widthGrow: 3 },
          { title: 'tries', field: 'tries', sorter: 'number', hozAlign: 'right' },
          { title: 'duration s', field: 'wall', sorter: 'number', hozAlign: 'right', formatter: (c) => fixed(c.getValue()) },
          { title: 'CPU s', field: 'cpu', sorter: 'number', hozAlign: 'right', formatter: (c) => fixed(c.getValue()) },
          { title: 'RSS MiB', field: 'rss', sorter: 'number', hozAlign: 'right', formatter: (c) => fixed(c.getValue(), 1) },
        ],
      });
      datumsTable.on('rowClick', (_e, row) => showDatum(p.name, row.getData().name));
    }
    drawDurations(p);
    if (selectedDatum) showDatum(p.name, selectedDatum, true);
  }

  function drawDurations(p) {
    const done = p.datums.filter((d) => d.wall !== undefined).sort((a, b) => b.wall - a.wall).slice(0, 200);
    charts.durations?.destroy();
    charts.durations = new Chart($('durations'), {
      type: 'bar',
      data: { labels: done.map((d) => d.name), datasets: [{ label: `duration of ${p.name}'s datums (s)`, data: done.map((d) => d.wall), backgroundColor: '#2e7d32' }] },
      options: { animation: false, maintainAspectRatio: false, scales: { x: { display: done.length <= 40 } } },
    });
  }

  function showDatum(pipeline, name, quiet) {
    const d = pipelineOf(pipeline)?.datums.find((x) => x.name === name);
    const box = $('datum');
    if (!d) return void (box.hidden = true);
    selectedDatum = name;
    const label = `${pipeline}/${name}`;
    const facts = [
      ['state', el('span', { class: `state ${d.state}` }, d.state)],
      ['datum key', d.key],
      ['reason', d.reason],
      ['tries', d.tries],
      ['exit code', d.exit],
      ['duration', d.wall === undefined ? undefined : `${fixed(d.wall)} s (command ${fixed(d.commandWall)} s, CPU ${fixed(d.cpu)} s, RSS ${fixed((d.maxRssKiB ?? 0) / 1024, 1)} MiB)`],
      ['runs on', d.ranOn],
      ['linked from', d.linkedFrom],
      ['commit', d.commit],
      ['run commit', d.runCommit],
      ['command', d.command?.join(' ')],
    ].filter(([, v]) => v !== undefined && v !== '');
    box.replaceChildren(
      ...[
      el('h2', {}, label),
      el('dl', {}, facts.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)])),
      d.stderrTail ? [el('h3', {}, 'stderr (tail)'), el('pre', { id: 'stderr-tail' }, d.stderrTail)] : [],
      d.state === 'failed' && LIVE ? [el('button', { class: 'action', id: 'retry', onclick: () => retry(label) }, 'Retry'), el('h3', {}, 'Full log'), el('pre', { id: 'datum-log' }, 'loading…')] : [],
      retryNotes.has(label) ? el('p', { id: 'retry-status' }, retryNotes.get(label)) : [],
      d.inputs ? [el('h3', {}, 'Inputs'), el('ul', {}, d.inputs.flatMap((i) => i.files.map((f) => el('li', {}, `${f.path} `, el('small', {}, f.key)))))] : [],
      d.upstream?.length ? [el('h3', {}, 'Upstream datums'), el('ul', {}, d.upstream.map((u) => el('li', {}, el('a', { href: '#', onclick: (e) => (e.preventDefault(), goToDatum(u)) }, u))))] : [],
      d.rerun ? [el('h3', {}, 'Replay it'), rerunLine(d.rerun), el('p', {}, el('a', { href: '#', onclick: (e) => (e.preventDefault(), explainDatum(d)) }, 'Provenance graph'))] : [],
      ].flat(),
    );
    box.hidden = false;
    if (d.state === 'failed' && LIVE && !quiet) {
      api(`/api/logs?${selector()}&datum=${encodeURIComponent(label)}`).then(
        (r) => ($('datum-log').textContent = r.log),
        (e) => ($('datum-log').textContent = e.message),
      );
    }
  }

  function rerunLine(cmd) {
    const copy = el('button', { class: 'plain', onclick: () => navigator.clipboard?.writeText(cmd).then(() => (copy.textContent = 'copied'), () => undefined) }, 'Copy');
    return el('p', {}, el('code', { class: 'copy rerun' }, cmd), ' ', copy);
  }

  function goToDatum(label) {
    const i = label.indexOf('/');
    selectedPipeline = label.slice(0, i);
    selectedDatum = label.slice(i + 1);
    renderDag();
    renderDatums(true);
    showDatum(selectedPipeline, selectedDatum);
  }

  async function retry(label) {
    $('retry').disabled = true;
    try {
      const r = await api('/api/retry', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ dataset: ds().dataset, branch: ds().branch, datum: label }) });
      retryNotes.set(label, `retried ${r.retried.join(', ') || 'nothing'} (run ${r.run.id})`);
    } catch (e) {
      retryNotes.set(label, `could not retry: ${e.message}`);
    }
    const i = label.indexOf('/');
    showDatum(label.slice(0, i), label.slice(i + 1), true);
  }

  // ---- runs and cost -------------------------------------------------------------------------------
  function renderRuns() {
    const rows = ds().runs.map((r) => ({ ...r, computed: r.counts?.computed, failed: r.counts?.failed }));
    if (runsTable) return void runsTable.replaceData(rows);
    runsTable = new Tabulator('#runs-table', {
      data: rows,
      // A few rows, drawn while their tab may be hidden: no virtual rendering (it needs a visible height).
      renderVertical: 'basic',
      index: 'id',
      layout: 'fitColumns',
      placeholder: LIVE ? 'no runs yet' : 'a report has no runs: they are the daemon\'s',
      columns: [
        { title: 'run', field: 'id', sorter: 'number', width: 70 },
        { title: 'trigger', field: 'trigger', headerFilter: 'input' },
        { title: 'reason', field: 'reason', widthGrow: 3 },
        { title: 'outcome', field: 'state', formatter: (c) => (c.getValue() === 'failed' ? `<span class="state failed">failed</span>` : c.getValue()) },
        { title: 'requested', field: 'requestedAt' },
        { title: 'finished', field: 'finishedAt' },
        { title: 'computed', field: 'computed', sorter: 'number' },
        { title: 'failed', field: 'failed', sorter: 'number' },
      ],
    });
  }

  function renderCost() {
    const points = ds().cost;
    const days = [...new Set(points.map((p) => p.day))].sort();
    const pipelines = [...new Set(points.map((p) => p.pipeline))];
    const palette = ['#1565c0', '#2e7d32', '#c62828', '#6a1b9a', '#ef6c00', '#00838f', '#5d4037'];
    charts.cost?.destroy();
    charts.cost = new Chart($('cost-chart'), {
      type: 'bar',
      data: { labels: days, datasets: pipelines.map((name, i) => ({ label: name, backgroundColor: palette[i % palette.length], data: days.map((day) => points.filter((p) => p.pipeline === name && p.day === day).reduce((s, p) => s + p.cpuHours, 0)) })) },
      options: { animation: false, maintainAspectRatio: false, scales: { x: { stacked: true }, y: { stacked: true, title: { display: true, text: 'CPU hours' } } } },
    });
    const total = points.reduce((s, p) => s + p.cpuHours, 0);
    const price = ds().cpuHourCost;
    $('cost-note').textContent = `${points.reduce((s, p) => s + p.results, 0)} computations, ${fixed(total, 4)} CPU hours${price !== undefined ? `, ${fixed(total * price)} at ${price} per CPU hour` : ' (set git config minipach.cpuHourCost for a price)'}.`;
  }

  // ---- provenance ------------------------------------------------------------------------------------
  async function explain(path) {
    const x = LIVE ? await api(`/api/explain?${selector()}&path=${encodeURIComponent(path)}`) : explainFromOverview(path);
    drawExplanation(x);
  }

  /** A report has no git at hand: the same graph, from the datums' recorded inputs and upstream. */
  function explainFromOverview(path) {
    const owner = ds().pipelines.flatMap((p) => p.datums.map((d) => ({ p, d }))).filter(({ d }) => d.state === 'done' && (path === d.outputDir || path.startsWith(`${d.outputDir}/`))).sort((a, b) => b.d.outputDir.length - a.d.outputDir.length)[0];
    if (!owner) throw new Error(`${path} is not an output of a current datum`);
    const datums = [];
    const seen = new Set();
    const visit = (label) => {
      const d = datumByLabel(label);
      if (!d || seen.has(label)) return;
      seen.add(label);
      const upstream = d.upstream || [];
      const made = (f) => upstream.find((u) => { const x = datumByLabel(u); return x && (f.path === x.outputDir || f.path.startsWith(`${x.outputDir}/`)); });
      datums.push({ id: label, pipeline: label.split('/')[0], datum: d.name, rerun: d.rerun, inputs: (d.inputs || []).map((i) => ({ files: i.files.map((f) => ({ ...f, made_by: made(f) })) })), upstream });
      upstream.forEach(visit);
    };
    visit(`${owner.p.name}/${owner.d.name}`);
    return { path, file: { path, made_by: `${owner.p.name}/${owner.d.name}` }, datums };
  }

  function drawExplanation(x) {
    const nodes = [];
    const edges = [];
    const label = (id) => { const d = x.datums.find((y) => y.id === id); return d ? `${d.pipeline}/${d.datum}` : id; };
    nodes.push({ id: 'file', width: Math.max(140, x.path.length * 7 + 20), height: 32, class: 'prov file', attrs: { 'data-file': x.path }, draw: (g) => g.append(el('svg:text', { x: 10, y: 20 }, x.path)) });
    for (const d of x.datums) {
      const text = `${d.pipeline}/${d.datum}`;
      nodes.push({ id: `d:${d.id}`, width: Math.max(140, text.length * 7 + 20), height: 32, class: 'prov datum', attrs: { 'data-datum': text }, draw: (g) => g.append(el('svg:text', { x: 10, y: 20 }, text)) });
      for (const u of d.upstream) edges.push({ from: `d:${u}`, to: `d:${d.id}` });
      const raw = d.inputs.flatMap((i) => i.files).filter((f) => !f.made_by);
      for (const f of raw.slice(0, 12)) {
        const id = `raw:${f.path}`;
        if (!nodes.some((n) => n.id === id)) nodes.push({ id, width: Math.max(120, f.path.length * 7 + 20), height: 28, class: 'prov raw', attrs: { 'data-raw': f.path }, draw: (g) => g.append(el('svg:text', { x: 10, y: 18 }, f.path)) });
        edges.push({ from: id, to: `d:${d.id}` });
      }
      if (raw.length > 12) {
        nodes.push({ id: `more:${d.id}`, width: 160, height: 28, class: 'prov raw', draw: (g) => g.append(el('svg:text', { x: 10, y: 18 }, `… ${raw.length - 12} more raw files`)) });
        edges.push({ from: `more:${d.id}`, to: `d:${d.id}` });
      }
    }
    if (x.file.made_by) edges.push({ from: `d:${x.file.made_by}`, to: 'file' });
    drawGraph($('explain-graph'), nodes, edges, { label: `provenance of ${x.path}` });
    const maker = x.datums.find((d) => d.id === x.file.made_by);
    $('explain-summary').textContent = maker ? `${x.path} was made by ${label(maker.id)}, from ${x.datums.length - 1} upstream datum(s) and raw data.` : `${x.path} is raw data (added in ${short(x.file.added_in)}).`;
    $('explain-rerun').replaceChildren(...(maker ? [el('h3', {}, 'Replay the run that made it'), rerunLine(maker.rerun)] : []));
  }

  function explainDatum(d) {
    showTab('provenance');
    $('explain-path').value = d.outputDir;
    explain(d.outputDir).catch((e) => ($('explain-summary').textContent = e.message));
  }

  async function fillOutputs() {
    const paths = LIVE ? await api(`/api/outputs?${selector()}`) : ds().pipelines.flatMap((p) => p.datums.filter((d) => d.state === 'done').map((d) => d.outputDir));
    $('outputs').replaceChildren(...paths.map((p) => el('option', { value: p })));
  }

  // ---- the page -------------------------------------------------------------------------------------
  function showTab(name) {
    for (const b of document.querySelectorAll('#tabs button')) b.classList.toggle('active', b.dataset.tab === name);
    for (const s of document.querySelectorAll('.tab')) s.classList.toggle('active', s.id === name);
    if (name === 'provenance') fillOutputs().catch(() => undefined);
    // A table drawn while its tab was hidden has no height yet.
    if (name === 'pipelines') datumsTable?.redraw(true);
    if (name === 'runs') runsTable?.redraw(true);
  }

  function renderDatasets() {
    $('datasets').replaceChildren(...overviews.map((o, i) => el('button', { class: i === current ? 'active' : '', onclick: () => ((current = i), (selectedPipeline = undefined), (datumsTable = datumsTable?.destroy()), (runsTable = runsTable?.destroy()), render()) }, `${o.dataset} ${o.branch}`)));
  }

  function render() {
    if (!overviews.length) return void ($('dag').textContent = 'no dataset');
    renderDatasets();
    renderDag();
    renderDatums();
    renderRuns();
    renderCost();
    $('footer').textContent = `${ds().dataset} ${ds().branch} at ${short(ds().head)}` + (LIVE ? `, updated ${new Date().toLocaleTimeString()}` : `, report made ${CFG.generatedAt} by minipach ${CFG.version}`);
    document.body.dataset.head = ds().head;
  }

  let pending;
  async function refresh() {
    try {
      overviews = await api('/api/overview');
      render();
    } catch (e) {
      $('footer').textContent = `could not refresh: ${e.message}`;
    }
  }
  const refreshSoon = () => {
    clearTimeout(pending);
    pending = setTimeout(refresh, 400);
  };

  for (const b of document.querySelectorAll('#tabs button')) b.addEventListener('click', () => showTab(b.dataset.tab));
  $('explain-form').addEventListener('submit', (e) => {
    e.preventDefault();
    explain($('explain-path').value.trim()).catch((err) => ($('explain-summary').textContent = err.message));
  });
  if (LIVE) {
    refresh();
    const events = new EventSource('/api/events');
    events.onopen = () => $('live').classList.add('on');
    events.onerror = () => $('live').classList.remove('on');
    events.onmessage = refreshSoon;
    $('live').textContent = 'live';
  } else {
    $('live').textContent = 'report';
    render();
  }
})();
