import { InvalidArgumentError } from "@cinderts/core";
import type { CommandContext, CommandSpec } from "./commands.js";
import type { RemoteService } from "./remote.js";

/**
 * Consumer-host commands of cinderlib's remote-attach flow, against a cinderts server: this host registers
 * its connector properties under its node id, and attaches (with its own connectors) what the controller
 * connected for it. They exist only with a server (the global --server / $CINDERTS_SERVER).
 */

async function remote(ctx: CommandContext): Promise<RemoteService> {
  if (!ctx.server) throw new InvalidArgumentError("no server: give --server URL or set CINDERTS_SERVER", { issues: [{ path: "server", message: "required" }] });
  return (await ctx.service()) as RemoteService;
}

function connectionId(ctx: CommandContext): string {
  const id = ctx.positionals[0];
  if (!id) throw new InvalidArgumentError("CONNECTION_ID is required", { issues: [{ path: "CONNECTION_ID", message: "required" }] });
  return id;
}

export const NODE_COMMANDS: CommandSpec[] = [
  {
    words: ["node", "register"],
    args: "--server URL",
    summary: "register this host's connector properties on the server under its node id",
    async run(ctx) {
      const node = await (await remote(ctx)).registerNode();
      ctx.out.result(node, () => `registered node ${node.id}`, () => node.id);
    },
  },
  {
    words: ["node", "attach"],
    args: "CONNECTION_ID --server URL",
    summary: "attach on this host a connection the server exported for it (this host's connector runs); prints its path",
    positionals: ["CONNECTION_ID"],
    async run(ctx) {
      const id = connectionId(ctx);
      const conn = await (await remote(ctx)).attachConnection(id);
      ctx.out.result(conn, () => `attached connection ${conn.id} at ${conn.path}`, () => conn.path);
    },
  },
  {
    words: ["node", "detach"],
    args: "CONNECTION_ID --server URL",
    summary: "detach on this host a connection attached with node attach (the server keeps the connection)",
    positionals: ["CONNECTION_ID"],
    async run(ctx) {
      const id = connectionId(ctx);
      const conn = await (await remote(ctx)).detachConnection(id);
      ctx.out.result(conn, () => `detached connection ${conn.id}`, () => conn.id);
    },
  },
];
