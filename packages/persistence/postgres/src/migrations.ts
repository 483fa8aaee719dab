/**
 * Schema migrations, applied in order inside one transaction under a transaction-scoped advisory lock, so
 * that several instances starting at once apply each step exactly once. Never edit a released step: add one.
 */
export const migrations: readonly { version: number; name: string; sql: (schema: string) => string }[] = [
  {
    version: 1,
    name: "records and key-values",
    sql: (s) => `
      create table ${s}.volumes (
        id text primary key,
        version integer not null,
        backend text not null,
        name text,
        status text not null,
        created_at text collate "C" not null,
        data jsonb not null
      );
      create index volumes_backend on ${s}.volumes (backend, created_at, id);
      create index volumes_name on ${s}.volumes (name);
      create index volumes_status on ${s}.volumes (status);

      create table ${s}.snapshots (
        id text primary key,
        version integer not null,
        backend text not null,
        volume_id text not null,
        name text,
        status text not null,
        created_at text collate "C" not null,
        data jsonb not null
      );
      create index snapshots_backend on ${s}.snapshots (backend, created_at, id);
      create index snapshots_volume on ${s}.snapshots (volume_id);
      create index snapshots_name on ${s}.snapshots (name);

      create table ${s}.connections (
        id text primary key,
        version integer not null,
        backend text not null,
        volume_id text not null,
        node_id text,
        status text not null,
        created_at text collate "C" not null,
        data jsonb not null
      );
      create index connections_backend on ${s}.connections (backend, created_at, id);
      create index connections_volume on ${s}.connections (volume_id);
      create index connections_node on ${s}.connections (node_id);

      create table ${s}.kv (
        key text collate "C" primary key,
        value jsonb,
        updated_at timestamptz not null default now()
      );
    `,
  },
];
