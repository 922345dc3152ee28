/**
 * One resource of a node (or the cluster) as a bar: allocated within allocatable within the
 * host's total. Allocatable may exceed the total (overcommit); the bar scales to the larger.
 */
export interface BarProps {
  label: string;
  allocated: number;
  allocatable: number;
  total: number;
  format?: (n: number) => string;
}

export function Bar({ label, allocated, allocatable, total, format = String }: BarProps) {
  const scale = Math.max(allocated, allocatable, total, 1);
  const pct = (n: number) => `${Math.min(100, (n / scale) * 100).toFixed(1)}%`;
  const over = allocated > allocatable;
  const text = `${format(allocated)} of ${format(allocatable)} allocatable (${format(total)} total)`;
  return (
    <div class={over ? 'bar over' : 'bar'}>
      <div class="bar-head">
        <span>{label}</span>
        <span class="bar-text">{text}</span>
      </div>
      <div class="bar-track" role="meter" aria-label={label} aria-valuemin={0} aria-valuemax={allocatable} aria-valuenow={allocated} aria-valuetext={text}>
        <div class="bar-total" style={{ width: pct(total) }} />
        <div class="bar-allocatable" style={{ width: pct(allocatable) }} />
        <div class="bar-allocated" style={{ width: pct(allocated) }} />
      </div>
    </div>
  );
}
