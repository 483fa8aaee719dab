import { isIP } from "node:net";
import { z } from "@cinderts/core";
import { IscsiTargetOptions } from "@cinderts/target-iscsi";

const absPath = z.string().regex(/^\/[A-Za-z0-9._\/+-]*$/, "must be an absolute path of A-Z a-z 0-9 . _ / + -");

export const LioConfig = z
  .object({
    ...IscsiTargetOptions,
    bindIp: z
      .string()
      .refine((s) => isIP(s) !== 0, "must be an IPv4 or IPv6 address")
      .optional()
      .describe("Address the portal listens on when it differs from targetIp (e.g. 0.0.0.0 behind NAT or a port forward)"),
    bindPort: z
      .number()
      .int()
      .min(1)
      .max(65535)
      .optional()
      .describe("Port the portal listens on when it differs from targetPort (port forwards); only with bindIp"),
    saveFile: absPath
      .nullable()
      .default("/etc/rtslib-fb-target/saveconfig.json")
      .describe("rtslib-fb saveconfig.json rewritten after every change (restored at boot by `targetctl restore`); null = do not persist"),
    configfs: absPath.default("/sys/kernel/config/target").describe("LIO configfs root"),
  })
  .strict();
export type LioConfig = z.output<typeof LioConfig>;
