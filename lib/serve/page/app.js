/* global maplibregl, window, document, Node, location, fetch */
// The geobatch viewer page: plain JS over MapLibre GL, everything from the local server.
'use strict';

const NODATA_COLORS = { 'all data': '#2e9e44', 'partial data': '#f08c00', 'no data': '#d62828' };
const ERROR_COLORS = { fp: '#d62828', fn: '#f0c400', mislabel: '#8e44ad' };

/** State the page exposes for tests and the console. */
const viewer = (window.viewer = { map: null, layers: [], styleLayers: {}, ready: false, error: null });

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function classColorExpr(palette, prop) {
  // class id n -> palette[(n - 1) % 20], the class rasters' colours
  const idx = ['%', ['-', ['to-number', ['get', prop], 1], 1], palette.length];
  const expr = ['match', idx];
  palette.forEach((c, i) => expr.push(i, c));
  expr.push('#888888');
  return expr;
}

function addRaster(map, layer) {
  map.addSource(layer.id, {
    type: 'raster',
    tiles: [`${location.origin}/tiles/${layer.id}/{z}/{x}/{y}.png`],
    tileSize: 256,
    bounds: layer.bounds,
    minzoom: 0,
    maxzoom: layer.maxZoom,
  });
  map.addLayer({ id: layer.id, type: 'raster', source: layer.id, paint: { 'raster-fade-duration': 0 } });
  return [layer.id];
}

function addVector(map, layer, palette) {
  map.addSource(layer.id, { type: 'geojson', data: `${location.origin}/api/vector/${layer.id}.geojson` });
  let color = '#e040fb';
  let fillOpacity = 0.15;
  if (layer.role === 'chips') {
    color = ['match', ['get', 'nodata'], ...Object.entries(NODATA_COLORS).flat(), '#1f78b4'];
    fillOpacity = 0.12;
  } else if (layer.role === 'predictions') {
    color = classColorExpr(palette, 'category_id');
    fillOpacity = ['*', 0.6, ['to-number', ['coalesce', ['get', 'score'], 1], 1]];
  } else if (layer.role === 'errors') {
    color = ['match', ['get', 'kind'], ...Object.entries(ERROR_COLORS).flat(), '#444444'];
    fillOpacity = 0.3;
  }
  const polygons = ['match', ['geometry-type'], ['Polygon', 'MultiPolygon'], true, false];
  map.addLayer({
    id: `${layer.id}-fill`,
    type: 'fill',
    source: layer.id,
    filter: polygons,
    paint: { 'fill-color': color, 'fill-opacity': fillOpacity },
  });
  map.addLayer({
    id: `${layer.id}-line`,
    type: 'line',
    source: layer.id,
    filter: polygons,
    paint: { 'line-color': color, 'line-width': layer.role === 'chips' ? 1 : 1.5 },
  });
  map.addLayer({
    id: `${layer.id}-point`,
    type: 'circle',
    source: layer.id,
    filter: ['==', ['geometry-type'], 'Point'],
    paint: { 'circle-color': color, 'circle-radius': 4 },
  });
  return [`${layer.id}-fill`, `${layer.id}-line`, `${layer.id}-point`];
}

function setVisible(map, id, on) {
  for (const styleId of viewer.styleLayers[id] ?? [])
    map.setLayoutProperty(styleId, 'visibility', on ? 'visible' : 'none');
}

function buildSwitcher(map, layers) {
  const box = document.getElementById('layers');
  let group = null;
  for (const layer of layers) {
    if (layer.group !== group) {
      group = layer.group;
      box.append(el('div', { class: 'group' }, group));
    }
    const input = el('input', { type: 'checkbox', id: `toggle-${layer.id}`, 'data-layer': layer.id });
    input.checked = true;
    input.addEventListener('change', () => setVisible(map, layer.id, input.checked));
    const row = el('label', { class: 'layer', for: `toggle-${layer.id}` }, input, layer.title);
    if (layer.bounds) {
      // scenes of one run can lie far apart: zoom to one
      const zoom = el('button', { type: 'button', class: 'zoom', title: 'zoom to layer' }, 'zoom');
      zoom.addEventListener('click', (e) => {
        e.preventDefault();
        map.fitBounds(layer.bounds, { padding: 20 });
      });
      row.append(zoom);
    }
    box.append(row);
  }
}

function buildLegend(layers) {
  const box = document.getElementById('legend');
  const seen = new Set();
  const chips = layers.some((l) => l.role === 'chips');
  if (chips) {
    box.append(el('div', { class: 'group' }, 'chips (no-data class)'));
    for (const [name, c] of Object.entries(NODATA_COLORS))
      box.append(el('div', {}, el('span', { class: 'swatch', style: `background:${c}` }), name));
  }
  for (const layer of layers) {
    if (!layer.legend) continue;
    const key = JSON.stringify(layer.legend);
    if (seen.has(key)) continue;
    seen.add(key);
    box.append(el('div', { class: 'group' }, layer.group));
    for (const e of layer.legend)
      box.append(
        el(
          'div',
          {},
          el('span', { class: 'swatch', style: `background:${e.color}` }),
          `${e.value} ${e.name}`,
        ),
      );
  }
  if (box.childElementCount) document.getElementById('legend-box').hidden = false;
}

function table(rows) {
  return el('table', {}, ...rows.map(([k, v]) => el('tr', {}, el('td', {}, k), el('td', {}, v))));
}

async function showChip(map, name) {
  const panel = document.getElementById('panel');
  panel.replaceChildren(el('p', { class: 'hint' }, `loading ${name}…`));
  const res = await fetch(`/api/chip/${encodeURIComponent(name)}`);
  if (!res.ok) {
    panel.replaceChildren(el('p', {}, await res.text()));
    return;
  }
  const chip = await res.json();
  const [x, y, w, h] = Array.isArray(chip.window) ? chip.window : [];
  const rows = [
    ['chip', chip.name],
    ['scene', chip.source ?? ''],
    ['window', w !== undefined ? `x ${x}, y ${y}, w ${w}, h ${h}` : JSON.stringify(chip.window)],
    ['annotations', chip.annotations.length],
  ];
  const list = el(
    'ul',
    { class: 'annotations' },
    ...chip.annotations.map((a) =>
      el('li', {}, `${a.category} [${(a.bbox ?? []).map((v) => Math.round(v)).join(', ')}]`),
    ),
  );
  const parts = [el('h3', { class: 'chip-name' }, chip.name), table(rows), list];
  parts.push(el('img', { src: `/api/chip/${encodeURIComponent(name)}/image`, alt: chip.name }));
  if (viewer.similar) {
    const out = el('div', { class: 'similar' });
    parts.push(
      el('button', { type: 'button', onclick: () => showSimilar(map, chip.name, out) }, 'Similar chips'),
      out,
    );
  }
  panel.replaceChildren(...parts);
}

async function showSimilar(map, name, out) {
  out.replaceChildren(el('p', { class: 'hint' }, 'searching…'));
  const res = await fetch(`/api/similar?chip=${encodeURIComponent(name)}&k=10`);
  if (!res.ok) {
    out.replaceChildren(el('p', {}, await res.text()));
    return;
  }
  const { neighbours } = await res.json();
  const features = neighbours
    .filter((n) => n.footprint)
    .map((n) => ({ type: 'Feature', geometry: n.footprint, properties: { name: n.name, score: n.score } }));
  map.getSource('similar').setData({ type: 'FeatureCollection', features });
  out.replaceChildren(
    el(
      'ol',
      {},
      ...neighbours.map((n) =>
        el('li', { onclick: () => showChip(map, n.name) }, `${n.name} (${Number(n.score).toFixed(3)})`),
      ),
    ),
  );
}

function showPrediction(feature) {
  const p = feature.properties;
  const rows = Object.entries(p)
    .filter(([k]) => k !== 'bbox')
    .map(([k, v]) => [k, typeof v === 'number' ? String(Math.round(v * 1e4) / 1e4) : String(v)]);
  document.getElementById('panel').replaceChildren(el('h3', {}, p.class ?? 'prediction'), table(rows));
}

async function main() {
  const info = await (await fetch('/api/layers')).json();
  viewer.layers = info.layers;
  viewer.similar = info.similar;
  document.getElementById('title').textContent = info.runId ? `run ${info.runId}` : info.root;
  const map = new maplibregl.Map({
    container: 'map',
    style: {
      version: 8,
      sources: {},
      layers: [{ id: 'background', type: 'background', paint: { 'background-color': '#dfe5ea' } }],
    },
    bounds: info.bounds ?? [-180, -80, 180, 80],
    fitBoundsOptions: { padding: 20 },
    attributionControl: false,
    fadeDuration: 0,
    preserveDrawingBuffer: true,
  });
  viewer.map = map;
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }));
  map.addControl(new maplibregl.ScaleControl());
  await new Promise((resolve) => map.on('load', resolve));
  // rasters first, then vectors above them
  const ordered = [
    ...info.layers.filter((l) => l.type === 'raster'),
    ...info.layers.filter((l) => l.type === 'vector'),
  ];
  for (const layer of ordered)
    viewer.styleLayers[layer.id] =
      layer.type === 'raster' ? addRaster(map, layer) : addVector(map, layer, info.palette);
  map.addSource('similar', { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
  map.addLayer({
    id: 'similar-line',
    type: 'line',
    source: 'similar',
    paint: { 'line-color': '#00e5ff', 'line-width': 3 },
  });
  buildSwitcher(map, ordered);
  buildLegend(ordered);

  const predictions = ordered.filter((l) => l.role === 'predictions');
  if (predictions.length) {
    const box = document.getElementById('score-box');
    box.hidden = false;
    const slider = document.getElementById('score');
    slider.addEventListener('input', () => {
      const t = Number(slider.value);
      document.getElementById('score-value').textContent = t.toFixed(2);
      for (const l of predictions)
        for (const id of viewer.styleLayers[l.id])
          map.setFilter(id, [
            'all',
            id.endsWith('-point')
              ? ['==', ['geometry-type'], 'Point']
              : ['match', ['geometry-type'], ['Polygon', 'MultiPolygon'], true, false],
            ['>=', ['to-number', ['coalesce', ['get', 'score'], 1], 1], t],
          ]);
    });
  }

  const clickable = ordered
    .filter((l) => l.type === 'vector')
    .flatMap((l) => [`${l.id}-fill`, `${l.id}-point`].map((id) => ({ id, layer: l })));
  map.on('click', (e) => {
    const visible = clickable
      .filter((c) => map.getLayoutProperty(c.id, 'visibility') !== 'none')
      .map((c) => c.id);
    const hits = map.queryRenderedFeatures(e.point, { layers: visible });
    // predictions and errors above chips: the smaller thing is the one meant
    const byRole = (role) =>
      hits.find((h) => clickable.find((c) => c.id === h.layer.id)?.layer.role === role);
    const hit = byRole('predictions') ?? byRole('errors') ?? byRole('labels') ?? byRole('chips');
    if (!hit) return;
    const role = clickable.find((c) => c.id === hit.layer.id).layer.role;
    if (role === 'chips') showChip(map, hit.properties.chip);
    else showPrediction(hit);
  });
  map.once('idle', () => {
    viewer.ready = true;
    document.body.dataset.ready = '1';
  });
}

main().catch((error) => {
  viewer.error = String(error);
  document.getElementById('panel').textContent = `error: ${error}`;
});
