/** Prometheus text exposition, written by hand: a few counters and histograms need no client library. */

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

type Labels = Record<string, string>;
const keyOf = (l: Labels) => JSON.stringify(Object.entries(l).sort(([a], [b]) => (a < b ? -1 : 1)));
const esc = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
const fmt = (l: Labels) => {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${esc(v)}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
};

class Counter {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(readonly name: string, readonly help: string) {}
  inc(labels: Labels, by = 1): void {
    const k = keyOf(labels);
    const cur = this.values.get(k);
    if (cur) cur.value += by;
    else this.values.set(k, { labels, value: by });
  }
  get(labels: Labels): number {
    return this.values.get(keyOf(labels))?.value ?? 0;
  }
  render(): string[] {
    return [
      `# HELP ${this.name} ${this.help}`,
      `# TYPE ${this.name} counter`,
      ...[...this.values.values()].map((v) => `${this.name}${fmt(v.labels)} ${v.value}`),
    ];
  }
}

class Histogram {
  private readonly values = new Map<string, { labels: Labels; buckets: number[]; sum: number; count: number }>();
  constructor(readonly name: string, readonly help: string) {}
  observe(labels: Labels, seconds: number): void {
    const k = keyOf(labels);
    let cur = this.values.get(k);
    if (!cur) {
      cur = { labels, buckets: BUCKETS.map(() => 0), sum: 0, count: 0 };
      this.values.set(k, cur);
    }
    BUCKETS.forEach((b, i) => {
      if (seconds <= b) cur.buckets[i]!++;
    });
    cur.sum += seconds;
    cur.count++;
  }
  render(): string[] {
    const out = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const v of this.values.values()) {
      BUCKETS.forEach((b, i) => out.push(`${this.name}_bucket${fmt({ ...v.labels, le: String(b) })} ${v.buckets[i]}`));
      out.push(`${this.name}_bucket${fmt({ ...v.labels, le: "+Inf" })} ${v.count}`);
      out.push(`${this.name}_sum${fmt(v.labels)} ${v.sum}`);
      out.push(`${this.name}_count${fmt(v.labels)} ${v.count}`);
    }
    return out;
  }
}

export class Metrics {
  readonly requests = new Counter("cinderts_http_requests_total", "HTTP requests by route and status");
  readonly requestSeconds = new Histogram("cinderts_http_request_duration_seconds", "HTTP request duration by route");
  readonly operations = new Counter("cinderts_operations_total", "storage operations by backend, operation and outcome");
  readonly operationSeconds = new Histogram("cinderts_operation_duration_seconds", "storage operation duration by backend and operation");
  readonly operationErrors = new Counter("cinderts_operation_errors_total", "failed storage operations by backend, operation and error code");
  private inflight = 0;

  inflightDelta(d: number): void {
    this.inflight += d;
  }

  render(): string {
    return [
      ...this.requests.render(),
      ...this.requestSeconds.render(),
      ...this.operations.render(),
      ...this.operationSeconds.render(),
      ...this.operationErrors.render(),
      "# HELP cinderts_http_requests_in_flight requests being served",
      "# TYPE cinderts_http_requests_in_flight gauge",
      `cinderts_http_requests_in_flight ${this.inflight}`,
      "",
    ].join("\n");
  }
}
