import { InvalidArgumentError } from "@cinderts/core";
import type { CommandContext, CommandSpec } from "./commands.js";

/**
 * Consumer-host commands of cinderlib's remote-attach flow, against a cinderts server: this host registers
 * its connector properties under its node id, and attaches (with its own connectors) what the controller
 * connected for it. The server client is imported only here, so other commands never load it.
 */

const serverOption = {
  server: { type: "string", value: "URL", help: "cinderts server URL (default $CINDERTS_SERVER); token from $CINDERTS_TOKEN" },
} as const;

async function api(ctx: CommandContext) {
  const url = (typeof ctx.values.server === "string" ? ctx.values.server : undefined) ?? ctx.io.env.CINDERTS_SERVER;
  if (!url) throw new InvalidArgumentError("no server: give --server URL or set CINDERTS_SERVER", { issues: [{ path: "server", message: "required" }] });
  // The token comes from the environment only: an argument would show in `ps` to every user of the host.
  const token = ctx.io.env.CINDERTS_TOKEN;
  if (!token) throw new InvalidArgumentError("no token: set CINDERTS_TOKEN", { issues: [{ path: "CINDERTS_TOKEN", message: "required" }] });
  const { CindertsClient } = await import("@cinderts/server/client");
  return new CindertsClient({ url, token });
}

function connectionId(ctx: CommandContext): string {
  const id = ctx.positionals[0];
  if (!id) throw new InvalidArgumentError("CONNECTION_ID is required", { issues: [{ path: "CONNECTION_ID", message: "required" }] });
  return id;
}

export const NODE_COMMANDS: CommandSpec[] = [
  {
    words: ["node", "register"],
    args: "[--server URL]",
    summary: "register this host's connector properties on the server under its node id",
    options: serverOption,
    async run(ctx) {
      const client = await api(ctx);
      const ct = await ctx.open();
      const node = await client.registerNode(ct.nodeId, await ct.connectorProperties());
      ctx.out.result(node, () => `registered node ${node.id}`, () => node.id);
    },
  },
  {
    words: ["node", "attach"],
    args: "CONNECTION_ID [--server URL]",
    summary: "attach on this host a connection the server exported for it (this host's connector runs); prints its path",
    positionals: ["CONNECTION_ID"],
    options: serverOption,
    async run(ctx) {
      const id = connectionId(ctx);
      const client = await api(ctx);
      const ct = await ctx.open();
      const conn = await client.attachOnNode(id, ct, { signal: ctx.signal });
      ctx.out.result(conn, () => `attached connection ${conn.id} at ${conn.path}`, () => conn.path);
    },
  },
  {
    words: ["node", "detach"],
    args: "CONNECTION_ID [--server URL]",
    summary: "detach on this host a connection attached with node attach (the server keeps the connection)",
    positionals: ["CONNECTION_ID"],
    options: serverOption,
    async run(ctx) {
      const id = connectionId(ctx);
      const client = await api(ctx);
      const ct = await ctx.open();
      const conn = await client.detachOnNode(id, ct);
      ctx.out.result(conn, () => `detached connection ${conn.id}`, () => conn.id);
    },
  },
];
