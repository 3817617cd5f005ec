/**
 * Statistics and the text table of the benchmark.
 * @module
 */

/** The median of the finite values (NaN when there are none). */
export function median(values: readonly number[]): number {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/** A column of a table: a header and how to render one row's cell. */
export interface Column<T> {
  /** Header text. */
  header: string;
  /** The cell of a row. */
  cell: (row: T) => string;
}

/** Renders rows as an aligned text table (right-aligned cells, a rule under the header). */
export function table<T>(
  rows: readonly T[],
  columns: readonly Column<T>[],
): string {
  const cells = [
    columns.map((c) => c.header),
    ...rows.map((r) => columns.map((c) => c.cell(r))),
  ];
  const widths = columns.map((_, i) =>
    Math.max(...cells.map((row) => row[i].length))
  );
  const line = (row: string[]) =>
    row.map((c, i) => c.padStart(widths[i])).join("  ");
  const rule = widths.map((w) => "-".repeat(w)).join("  ");
  return [line(cells[0]), rule, ...cells.slice(1).map(line)].join("\n");
}

/** Tokens/s with one decimal ("-" when absent). */
export function fmtRate(x: number | undefined): string {
  return x === undefined || !Number.isFinite(x) ? "-" : x.toFixed(1);
}

/** A ratio with three decimals ("-" when absent). */
export function fmtRatio(x: number | undefined): string {
  return x === undefined || !Number.isFinite(x) ? "-" : x.toFixed(3);
}

/** Milliseconds with three decimals ("-" when absent). */
export function fmtMs(x: number | undefined): string {
  return x === undefined || !Number.isFinite(x) ? "-" : x.toFixed(3);
}
