// ECharts for the reporting pages. Only the parts drawn here are registered (echarts/core +
// line, bar, sankey, canvas renderer), which keeps the reporting chunk a fraction of the full
// library. Option builders take the API's tables (`{columns, rows}`) as they come.
import { useEffect, useRef } from 'preact/hooks';
import { init, use } from 'echarts/core';
import { BarChart, LineChart, SankeyChart } from 'echarts/charts';
import { GridComponent, LegendScrollComponent, TooltipComponent } from 'echarts/components';
import { CanvasRenderer } from 'echarts/renderers';
import { cellText, column } from './tables.js';

use([LineChart, BarChart, SankeyChart, GridComponent, LegendScrollComponent, TooltipComponent, CanvasRenderer]);

/**
 * One chart: the ECharts instance is created once when the element mounts, every new `option`
 * replaces the drawing with `setOption` (no re-initialisation), and the instance is disposed
 * when the element goes away. A null option clears it. Pass memoised options: a new object
 * redraws.
 */
export function Chart({ option, id, height = 280 }) {
  const element = useRef(null);
  const chart = useRef(null);
  useEffect(() => {
    const instance = init(element.current, null, { renderer: 'canvas' });
    chart.current = instance;
    // Panels change width with the window (and with the grid's columns): follow them.
    const observer = new ResizeObserver(() => instance.resize());
    observer.observe(element.current);
    return () => {
      observer.disconnect();
      instance.dispose();
      chart.current = null;
    };
  }, []);
  useEffect(() => {
    const instance = chart.current;
    if (!instance) return;
    if (option) instance.setOption(option, { notMerge: true });
    else instance.clear();
  }, [option]);
  return <div class="chart" id={id} ref={element} style={{ height: `${height}px` }} />;
}

const base = {
  animationDuration: 300,
  tooltip: { trigger: 'axis', confine: true },
  grid: { left: 12, right: 16, top: 36, bottom: 24 },
};

/**
 * Lines over a category x axis: `x` names the period column, `value` the measured one, and
 * `seriesOf(row)` the line a row belongs to (default: the `series` column, or one line named
 * after `value` when the table has none). A period missing for a line is drawn as 0: the
 * tables only list periods that had events. Rows of the same line and period add up.
 */
export function lineOption(table, { x = 'period', value = 'value', seriesOf } = {}) {
  const xi = column(table, x);
  const vi = column(table, value);
  const si = column(table, 'series');
  const lineOf = seriesOf || ((row) => (si >= 0 ? cellText(row[si]) : value));
  // Days sort as text whatever order the rows come in; the realtime page's `HH:MM` minutes
  // may cross midnight, so they keep the table's (chronological) order.
  const seen = [...new Set(table.rows.map((row) => String(row[xi])))];
  const periods = seen.every((period) => /^\d{2}:\d{2}$/.test(period)) ? seen : seen.sort();
  const byLine = new Map();
  for (const row of table.rows) {
    const line = lineOf(row);
    if (!byLine.has(line)) byLine.set(line, new Map());
    const points = byLine.get(line);
    const period = String(row[xi]);
    points.set(period, (points.get(period) || 0) + (Number(row[vi]) || 0));
  }
  return {
    ...base,
    legend: { type: 'scroll', top: 0 },
    xAxis: { type: 'category', data: periods, boundaryGap: false },
    yAxis: { type: 'value' },
    series: [...byLine].map(([line, points]) => ({
      type: 'line',
      name: line,
      showSymbol: periods.length <= 31,
      data: periods.map((period) => points.get(period) ?? 0),
    })),
  };
}

/** Horizontal bars, first row on top (the tables come largest first). */
export function barOption(labels, values, { name = 'value' } = {}) {
  return {
    ...base,
    tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' }, confine: true },
    grid: { left: 12, right: 24, top: 8, bottom: 24 },
    xAxis: { type: 'value' },
    yAxis: {
      type: 'category',
      inverse: true,
      data: labels.map((label) => (label === null || label === undefined ? '(none)' : String(label))),
      axisLabel: { width: 160, overflow: 'truncate' },
    },
    series: [{ type: 'bar', name, data: values.map((value) => Number(value) || 0), barMaxWidth: 28 }],
  };
}

/** Vertical bars, one series per group (funnel steps per group). */
export function groupedBarOption(categories, groups, { labels } = {}) {
  return {
    ...base,
    tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' }, confine: true },
    legend: { type: 'scroll', top: 0 },
    xAxis: { type: 'category', data: categories, axisLabel: { interval: 0, width: 120, overflow: 'truncate' } },
    yAxis: { type: 'value' },
    series: groups.map(({ name, values }, index) => ({
      type: 'bar',
      name,
      data: values,
      barMaxWidth: 48,
      label: labels ? { show: true, position: 'top', formatter: (point) => labels[index][point.dataIndex] } : undefined,
    })),
  };
}

/**
 * A sankey of path flows. Node names carry their step ("2 · /cart") so that a page seen at two
 * steps is two nodes and the graph stays acyclic (ECharts refuses cycles); labels show the
 * node alone.
 */
export function sankeyOption(table) {
  const step = column(table, 'step');
  const source = column(table, 'source');
  const target = column(table, 'target');
  const paths = column(table, 'paths');
  const label = (value) => (value === null || value === undefined ? '(none)' : String(value));
  const nodes = new Map();
  const links = table.rows.map((row) => {
    const n = Number(row[step]);
    const from = `${n} · ${label(row[source])}`;
    const to = `${n + 1} · ${label(row[target])}`;
    nodes.set(from, label(row[source]));
    nodes.set(to, label(row[target]));
    return { source: from, target: to, value: Number(row[paths]) || 0 };
  });
  return {
    animationDuration: 300,
    tooltip: { trigger: 'item', confine: true },
    series: [{
      type: 'sankey',
      left: 8,
      right: 120,
      top: 8,
      bottom: 8,
      nodeAlign: 'left',
      emphasis: { focus: 'adjacency' },
      data: [...nodes.keys()].map((name) => ({ name })),
      links,
      lineStyle: { color: 'gradient', curveness: 0.5, opacity: 0.35 },
      label: { overflow: 'truncate', width: 110, formatter: (point) => nodes.get(point.name) ?? point.name },
    }],
  };
}

/** Lines from ready-made points: `series` is `[{name, values}]` over `categories`. */
export function pointsLineOption(categories, series, { unit = '' } = {}) {
  return {
    ...base,
    legend: { type: 'scroll', top: 0 },
    tooltip: { ...base.tooltip, valueFormatter: (value) => (value === null || value === undefined ? '—' : `${value}${unit}`) },
    xAxis: { type: 'category', data: categories, boundaryGap: false },
    yAxis: { type: 'value', axisLabel: { formatter: `{value}${unit}` } },
    series: series.map(({ name, values }) => ({ type: 'line', name, data: values, connectNulls: false })),
  };
}
