/**
 * The panel's one table of resources: a scrolling region (keyboard-focusable, named for screen
 * readers) with a column per fact, a row per resource, and optionally one action per row
 * (remove, revoke, roll back) that asks first in a modal `Confirm`. The page keeps what the
 * action does and where its error shows; the table keeps which row is being asked about.
 */
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { Confirm } from './confirm.tsx';

export interface Column<T> {
  head: string;
  cell(row: T): ComponentChildren;
  /** The cell's class (a state's colour). */
  class?(row: T): string | undefined;
}

export interface RowAction<T> {
  /** The row's button text, and its accessible name unless `ariaLabel` says otherwise. */
  label(row: T): string;
  ariaLabel?(row: T): string;
  /** A destructive action: a red button, and a red confirming one. */
  danger?: boolean;
  disabled?: boolean;
  /** Rows without the button (a revision already targeted): their cell stays empty. */
  shown?(row: T): boolean;
  /** What the dialog asks: its title, its confirming button's text, what it says (the CLI line too). */
  ask(row: T): { title: string; action: string; body: ComponentChildren };
  /** Runs once confirmed, after the dialog has closed. */
  run(row: T): unknown;
}

export interface ResourceTableProps<T> {
  /** The region's accessible name ("Tokens", "VPN peers of default"). */
  label: string;
  rows: readonly T[];
  rowKey(row: T): string | number;
  /** The row's attributes: `data-*` for tests and links, `class` (the selected one). */
  rowProps?(row: T): Record<string, string | number | undefined>;
  columns: readonly Column<T>[];
  /** Absent for a caller who may not change anything: then no Action column either. */
  action?: RowAction<T> | undefined;
  caption?: string;
  tableClass?: string;
}

export function ResourceTable<T>({ label, rows, rowKey, rowProps, columns, action, caption, tableClass }: ResourceTableProps<T>) {
  const [asking, setAsking] = useState<{ row: T } | null>(null);
  const question = asking && action ? action.ask(asking.row) : null;
  return (
    <>
      <div class="table-wrap" tabIndex={0} role="region" aria-label={label}>
        <table class={tableClass}>
          {caption ? <caption>{caption}</caption> : null}
          <thead>
            <tr>
              {columns.map((c) => (
                <th key={c.head} scope="col">
                  {c.head}
                </th>
              ))}
              {action ? <th scope="col">Action</th> : null}
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={rowKey(r)} {...rowProps?.(r)}>
                {columns.map((c) => (
                  <td key={c.head} class={c.class?.(r)}>
                    {c.cell(r)}
                  </td>
                ))}
                {action ? (
                  <td>
                    {action.shown?.(r) === false ? null : (
                      <button type="button" class={action.danger ? 'danger small' : 'small'} onClick={() => setAsking({ row: r })} aria-label={action.ariaLabel?.(r)} disabled={action.disabled}>
                        {action.label(r)}
                      </button>
                    )}
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {asking && question && action ? (
        <Confirm
          title={question.title}
          action={question.action}
          danger={action.danger}
          onConfirm={() => {
            setAsking(null);
            void action.run(asking.row);
          }}
          onCancel={() => setAsking(null)}
        >
          {question.body}
        </Confirm>
      ) : null}
    </>
  );
}
